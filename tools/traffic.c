/* tools/traffic.c: `spikemesh traffic`: BookSim2-style synthetic traffic on the cycle-level mesh model, with a
 * load sweep that finds the saturation point. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "spikemesh/spikemesh.h"
#include "tools/cli.h"

static const char *const sm_usage_traffic =
    "usage: spikemesh traffic [OPTIONS]\n"
    "\n"
    "Injects synthetic traffic into the cycle-level mesh model: every tile offers Bernoulli(rate) one-\n"
    "destination packets per cycle. Prints mean and 99th-percentile latency, mean hops and accepted throughput.\n"
    "\n"
    "options:\n"
    "  --mesh WxH          mesh size in tiles (default: the chip's mesh)\n"
    "  --pattern P         uniform (default), transpose, bitcomp, tornado, hotspot, neighbor\n"
    "  --rate R            offered load in packets per node per cycle, 0 to 1 (default 0.1)\n"
    "  --cycles C          cycles of injection, the first fifth warm-up (default 10000)\n"
    "  --sweep             raise the load in steps of 0.02 until the mesh saturates, then bisect; print latency\n"
    "                      against load and the saturation rate\n"
    "  --router M          ideal (output-queued, unbounded buffers) or iq (input-queued, finite buffers);\n"
    "                      default: the chip's router\n"
    "  --chip SPEC         take router and link parameters from this chip (default loihi)\n"
    "  --buffer-depth D    packets per input buffer (iq)\n"
    "  --packet-flits F    flits per packet, 1 to 1024 (as in chip files)\n"
    "  --link-flits B      flits a link carries per cycle, 1 to 1024 (as in chip files)\n"
    "  --hop-ew H          cycles per east-west hop\n"
    "  --hop-ns H          cycles per north-south hop\n"
    "  --drop-after C      drop a packet blocked for C cycles (iq; 0: never)\n"
    "  --reinject          put dropped packets back into their router's injection queue\n"
    "  --seed N            random seed (default 1)\n"
    "  --latency-csv FILE  write the latency histogram (latency_cycles,packets); not with --sweep\n"
    "  --json              print one JSON object\n"
    "  -h, --help          show this help\n";

static int sm_parse_mesh(const char *arg, uint32_t *w, uint32_t *h)
{
    char *end;
    unsigned long a = strtoul(arg, &end, 10), b;
    if (end == arg || *end != 'x' || arg[0] < '0' || arg[0] > '9')
        return -1;
    const char *s = end + 1;
    if (*s < '0' || *s > '9')
        return -1;
    b = strtoul(s, &end, 10);
    if (*end != '\0' || a < 1 || b < 1 || a > 256 || b > 256)
        return -1;
    *w = (uint32_t)a;
    *h = (uint32_t)b;
    return 0;
}

/* -1 with errno set (0 for a write error without one) on failure. */
static int sm_write_histogram(const char *path, const uint64_t *lat, uint64_t n)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.part", path) >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    errno = 0;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    int bad = fputs("latency_cycles,packets\n", f) < 0;
    for (uint64_t i = 0; i < n && !bad;) { /* lat is sorted */
        uint64_t j = i;
        while (j < n && lat[j] == lat[i])
            j++;
        bad = fprintf(f, "%llu,%llu\n", (unsigned long long)lat[i], (unsigned long long)(j - i)) < 0;
        i = j;
    }
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        errno = e;
        return -1;
    }
    return 0;
}

/* Whether any packet of the measurement window was delivered, in the window or in the final drain (each takes at
 * least one cycle, so a mean latency above 0 says one was): without one, latency and hops have no value. */
static int sm_any_delivered(const sm_traffic_result_t *r)
{
    return r->measured > r->unfinished || r->mean_latency > 0;
}

/* A number, or null when no measured packet was delivered. */
static json_t *sm_measured_num(const sm_traffic_result_t *r, double v)
{
    return sm_any_delivered(r) ? json_real(v) : json_null();
}

static json_t *sm_result_json(const sm_traffic_result_t *r)
{
    return json_pack("{s:f,s:f,s:o,s:o,s:o,s:o,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f}", "offered_rate", r->offered,
                     "accepted_rate", r->accepted, "mean_latency_cycles", sm_measured_num(r, r->mean_latency),
                     "p99_latency_cycles", sm_measured_num(r, r->p99_latency), "zero_load_latency_cycles",
                     sm_measured_num(r, r->zero_load_latency), "mean_hops", sm_measured_num(r, r->mean_hops),
                     "saturated", r->saturated, "measured_packets",
                     (json_int_t)r->measured, "unfinished_packets", (json_int_t)r->unfinished, "sent",
                     (json_int_t)r->totals.sent, "delivered", (json_int_t)r->totals.delivered, "dropped",
                     (json_int_t)r->totals.dropped, "packet_hops", (json_int_t)r->packet_hops, "still_in_mesh",
                     (json_int_t)r->in_flight, "backlog_growth", r->backlog_growth);
}

int sm_cmd_traffic(int argc, char **argv)
{
    enum { O_MESH = 1, O_PATTERN, O_RATE, O_CYCLES, O_SWEEP, O_ROUTER, O_CHIP, O_DEPTH, O_FLITS, O_LINK, O_HEW,
           O_HNS, O_DROP, O_REINJECT, O_SEED, O_LATCSV, O_JSON };
    static const struct option opts[] = {
        {"mesh", required_argument, 0, O_MESH},        {"pattern", required_argument, 0, O_PATTERN},
        {"rate", required_argument, 0, O_RATE},        {"cycles", required_argument, 0, O_CYCLES},
        {"sweep", no_argument, 0, O_SWEEP},            {"router", required_argument, 0, O_ROUTER},
        {"chip", required_argument, 0, O_CHIP},        {"buffer-depth", required_argument, 0, O_DEPTH},
        {"packet-flits", required_argument, 0, O_FLITS}, {"link-flits", required_argument, 0, O_LINK},
        {"hop-ew", required_argument, 0, O_HEW},       {"hop-ns", required_argument, 0, O_HNS},
        {"drop-after", required_argument, 0, O_DROP},  {"reinject", no_argument, 0, O_REINJECT},
        {"seed", required_argument, 0, O_SEED},        {"latency-csv", required_argument, 0, O_LATCSV},
        {"json", no_argument, 0, O_JSON},              {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *cmd = "traffic", *chipspec = "loihi", *mesh = NULL, *latcsv = NULL, *router = NULL;
    sm_pattern_t pat = SM_PAT_UNIFORM;
    double rate = 0.1;
    uint64_t cycles = 10000, seed = 1, v;
    int sweep = 0, json = 0, c;
    uint64_t ov[6] = {0};
    int has[6] = {0}, reinject = -1;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case O_MESH:
            mesh = optarg;
            break;
        case O_PATTERN:
            if (sm_pattern_parse(optarg, &pat) != 0) {
                fprintf(stderr, "spikemesh traffic: --pattern '%s': unknown (known: uniform, transpose, bitcomp, "
                                "tornado, hotspot, neighbor)\n", optarg);
                return SM_EXIT_BADINPUT;
            }
            break;
        case O_RATE:
            if (sm_cli_double(cmd, "--rate", optarg, &rate))
                return SM_EXIT_BADINPUT;
            if (rate > 1.0) {
                fprintf(stderr, "spikemesh traffic: --rate '%s': must be at most 1 packet per node per cycle\n",
                        optarg);
                return SM_EXIT_BADINPUT;
            }
            break;
        case O_CYCLES:
            if (sm_cli_u64(cmd, "--cycles", optarg, &cycles))
                return SM_EXIT_BADINPUT;
            if (cycles < 100 || cycles > 100000000) {
                fprintf(stderr, "spikemesh traffic: --cycles '%s': must be between 100 and 100000000\n", optarg);
                return SM_EXIT_BADINPUT;
            }
            break;
        case O_SWEEP:
            sweep = 1;
            break;
        case O_ROUTER:
            router = optarg;
            if (strcmp(router, "ideal") != 0 && strcmp(router, "iq") != 0) {
                fprintf(stderr, "spikemesh traffic: --router '%s': must be ideal or iq\n", optarg);
                return SM_EXIT_BADINPUT;
            }
            break;
        case O_CHIP:
            chipspec = optarg;
            break;
        case O_DEPTH: case O_FLITS: case O_LINK: case O_HEW: case O_HNS: case O_DROP: {
            static const char *const names[] = {"--buffer-depth", "--packet-flits", "--link-flits", "--hop-ew",
                                                "--hop-ns", "--drop-after"};
            int k = c - O_DEPTH;
            if (sm_cli_u64(cmd, names[k], optarg, &v))
                return SM_EXIT_BADINPUT;
            /* flits: the chip file's limits (docs/chip-format.md) */
            uint64_t lo = k < 5 ? 1 : 0, hi = k == 1 || k == 2 ? 1024 : k < 5 ? 1000000 : 1000000000;
            if (v < lo || v > hi) {
                fprintf(stderr, "spikemesh traffic: %s '%s': must be between %llu and %llu%s\n", names[k], optarg,
                        (unsigned long long)lo, (unsigned long long)hi,
                        k == 1 || k == 2 ? " (as in chip files)" : "");
                return SM_EXIT_BADINPUT;
            }
            ov[k] = v;
            has[k] = 1;
            break;
        }
        case O_REINJECT:
            reinject = 1;
            break;
        case O_SEED:
            if (sm_cli_u64(cmd, "--seed", optarg, &seed))
                return SM_EXIT_BADINPUT;
            break;
        case O_LATCSV:
            latcsv = optarg;
            break;
        case O_JSON:
            json = 1;
            break;
        case 'h':
            fputs(sm_usage_traffic, stdout);
            return 0;
        case ':':
            fprintf(stderr, "spikemesh traffic: option '%s' needs a value (see --help)\n", argv[optind - 1]);
            return SM_EXIT_BADINPUT;
        default:
            /* optopt: the option's value for a long option given a value it does not take, the letter of an
             * unknown short option, 0 for an unknown long option */
            if (optopt >= O_MESH && optopt <= O_JSON) {
                for (const struct option *o = opts; o->name; o++)
                    if (o->val == optopt)
                        fprintf(stderr, "spikemesh traffic: option '--%s' takes no value (see --help)\n", o->name);
            } else if (optopt == 'h') {
                fprintf(stderr, "spikemesh traffic: option '--help' takes no value\n");
            } else if (optopt != 0) {
                fprintf(stderr, "spikemesh traffic: unknown option '-%c' (see --help)\n", optopt);
            } else {
                fprintf(stderr, "spikemesh traffic: unknown option '%s' (see --help)\n", argv[optind - 1]);
            }
            return SM_EXIT_BADINPUT;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "spikemesh traffic: unexpected argument '%s' (see --help)\n", argv[optind]);
        return SM_EXIT_BADINPUT;
    }
    sm_chip_t chip;
    sm_errbuf_t eb = {0};
    if (sm_chip_resolve(chipspec, &chip, &eb) != 0) {
        fprintf(stderr, "spikemesh traffic: %s\n", eb.msg);
        return SM_EXIT_BADINPUT;
    }
    uint32_t w = chip.width, h = chip.height;
    if (mesh && sm_parse_mesh(mesh, &w, &h) != 0) {
        fprintf(stderr, "spikemesh traffic: --mesh '%s': must be WxH with sides of 1 to 256 tiles\n", mesh);
        return SM_EXIT_BADINPUT;
    }
    if (w * h < 2) {
        fprintf(stderr, "spikemesh traffic: a %ux%u mesh has no links to load\n", w, h);
        return SM_EXIT_BADINPUT;
    }
    sm_noc_params_t np = chip.noc;
    if (router)
        np.kind = strcmp(router, "ideal") == 0 ? SM_NOC_IDEAL : SM_NOC_IQ;
    if (has[0])
        np.buffer_depth = (uint32_t)ov[0];
    if (has[1])
        np.packet_flits = (uint32_t)ov[1];
    if (has[2])
        np.link_flits = (uint32_t)ov[2];
    if (has[3])
        np.hop_cycles_ew = (uint32_t)ov[3];
    if (has[4])
        np.hop_cycles_ns = (uint32_t)ov[4];
    if (has[5])
        np.drop_after = ov[5];
    if (reinject >= 0)
        np.reinject = reinject;
    if (pat == SM_PAT_TRANSPOSE && w != h) {
        fprintf(stderr, "spikemesh traffic: transpose traffic needs a square mesh, got %ux%u\n", w, h);
        return SM_EXIT_BADINPUT;
    }

    if (latcsv && sweep) {
        fprintf(stderr, "spikemesh traffic: --latency-csv applies to one load, not to --sweep\n");
        return SM_EXIT_BADINPUT;
    }
    if (latcsv && sm_cli_check_writable(latcsv) != 0) { /* refuse an unwritable histogram before simulating */
        fprintf(stderr, "spikemesh traffic: --latency-csv '%s': cannot write the file: %s\n", latcsv,
                strerror(errno));
        return SM_EXIT_BADINPUT;
    }
    sm_traffic_result_t res;
    uint64_t *lat = NULL, nlat = 0, t0 = uv_hrtime(), hops_total = 0;
    json_t *rows = json_array();
    double sat = -1.0;
    int show = !json;
    if (show)
        printf("spikemesh traffic: %ux%u mesh, %s traffic, %s routers (buffers %u, %u-flit packets, %u flit/cycle "
               "links, hops %u/%u cycles E-W/N-S)\n",
               w, h, sm_pattern_name(pat), np.kind == SM_NOC_IDEAL ? "ideal output-queued" : "input-queued",
               np.buffer_depth, np.packet_flits, np.link_flits, np.hop_cycles_ew, np.hop_cycles_ns);
    if (sweep) {
        double ok = 0.0, bad = -1.0;
        int in_a_row = 0;
        if (show)
            printf("  %-8s %-9s %-12s %-10s %s\n", "offered", "accepted", "mean latency", "p99", "");
        for (int step = 1; step <= 50 && in_a_row < 2; step++) {
            double r = 0.02 * step;
            if (sm_traffic_run(w, h, &np, pat, r, cycles, seed, &res, NULL, NULL, &eb) != 0) {
                fprintf(stderr, "spikemesh traffic: %s\n", eb.msg);
                json_decref(rows);
                return SM_EXIT_BADINPUT;
            }
            hops_total += res.packet_hops;
            json_array_append_new(rows, sm_result_json(&res));
            if (show && sm_any_delivered(&res))
                printf("  %-8.3f %-9.4f %-12.1f %-10.0f %s\n", r, res.accepted, res.mean_latency, res.p99_latency,
                       res.saturated ? "saturated" : "");
            else if (show)
                printf("  %-8.3f %-9.4f %-12s %-10s %s\n", r, res.accepted, "none", "none",
                       res.saturated ? "saturated (no packet delivered)" : "(no packet delivered)");
            if (res.saturated) {
                in_a_row++;
                if (bad < 0)
                    bad = r;
            } else if (bad < 0) {
                ok = r;
            }
        }
        for (int k = 0; k < 4 && bad > 0; k++) { /* bisect between the last good and first saturated load */
            double mid = 0.5 * (ok + bad);
            if (sm_traffic_run(w, h, &np, pat, mid, cycles, seed, &res, NULL, NULL, &eb) != 0)
                break;
            hops_total += res.packet_hops;
            json_array_append_new(rows, sm_result_json(&res));
            if (res.saturated)
                bad = mid;
            else
                ok = mid;
        }
        sat = bad > 0 ? ok : 1.0;
        if (show) {
            if (bad > 0)
                printf("  saturation: %.4f packets per node per cycle\n", sat);
            else
                printf("  no saturation up to 1 packet per node per cycle\n");
        }
    } else {
        if (sm_traffic_run(w, h, &np, pat, rate, cycles, seed, &res, &lat, &nlat, &eb) != 0) {
            fprintf(stderr, "spikemesh traffic: %s\n", eb.msg);
            json_decref(rows);
            return SM_EXIT_BADINPUT;
        }
        hops_total = res.packet_hops;
        if (latcsv && sm_write_histogram(latcsv, lat, nlat) != 0) {
            fprintf(stderr, "spikemesh traffic: --latency-csv '%s': cannot write the file: %s\n", latcsv,
                    errno ? strerror(errno) : "write error");
            free(lat);
            json_decref(rows);
            return SM_EXIT_BADINPUT;
        }
        if (show) {
            printf("  offered         %.4f packets/node/cycle\n", res.offered);
            printf("  accepted        %.4f packets/node/cycle%s\n", res.accepted, res.saturated ? " (saturated)" : "");
            if (sm_any_delivered(&res)) {
                printf("  latency         mean %.2f, p99 %.0f cycles (zero-load %.2f)\n", res.mean_latency,
                       res.p99_latency, res.zero_load_latency);
                printf("  mean hops       %.3f\n", res.mean_hops);
            } else {
                printf("  latency         none: no packet of the measurement window was delivered\n");
                printf("  mean hops       none\n");
            }
            printf("  packets         %llu sent, %llu delivered, %llu dropped, %llu re-injected, %llu still in the "
                   "mesh when the drain stopped\n",
                   (unsigned long long)res.totals.sent, (unsigned long long)res.totals.delivered,
                   (unsigned long long)res.totals.dropped, (unsigned long long)res.totals.reinjected,
                   (unsigned long long)res.in_flight);
        }
    }
    double secs = (double)(uv_hrtime() - t0) * 1e-9;
    if (show)
        printf("  simulated       %llu packet-hops in %.3f s (%.3g packet-hops per second)\n",
               (unsigned long long)hops_total, secs, secs > 0 ? (double)hops_total / secs : 0.0);
    if (json) {
        json_t *o = sweep ? json_object() : sm_result_json(&res);
        json_object_set_new(o, "mesh", json_pack("[II]", (json_int_t)w, (json_int_t)h));
        json_object_set_new(o, "pattern", json_string(sm_pattern_name(pat)));
        json_object_set_new(o, "router", json_string(np.kind == SM_NOC_IDEAL ? "ideal" : "iq"));
        json_object_set_new(o, "cycles", json_integer((json_int_t)cycles));
        json_object_set_new(o, "wall_seconds", json_real(secs));
        json_object_set_new(o, "packet_hops_per_second", json_real(secs > 0 ? (double)hops_total / secs : 0.0));
        if (sweep) {
            json_object_set_new(o, "sweep", rows);
            json_object_set_new(o, "saturation_rate", json_real(sat));
            rows = NULL;
        }
        if (sm_cli_put_json("traffic", o) != 0) {
            json_decref(rows);
            free(lat);
            return SM_EXIT_BADINPUT;
        }
    }
    json_decref(rows);
    free(lat);
    return 0;
}
