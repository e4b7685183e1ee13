/* tools/map.c: `spikemesh map`: partitions and places a network on a chip with a chosen placer, reports per-core
 * utilisation, estimated traffic and routing tables, and writes the placement for `spikemesh run --placement`. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "spikemesh/spikemesh.h"
#include "tools/cli.h"

static const char *const sm_usage_map =
    "usage: spikemesh map NETWORK [OPTIONS]\n"
    "\n"
    "Partitions NETWORK into cores under every per-core limit (neurons, synapse memory, fan-in, fan-out), places\n"
    "the cores on the chip's mesh, builds the routing tables, and reports per-core utilisation, the estimated\n"
    "traffic (packets x hops, one spike per neuron) against the in-order placement, and table entries.\n"
    "Writes the placement, which `spikemesh run --placement FILE` uses.\n"
    "\n"
    "options:\n"
    "  --chip SPEC        chip preset, PRESET:WxH or chip JSON file (default loihi)\n"
    "  --placer NAME      order (tiles filled in order), greedy (each core next to the cores it talks to) or\n"
    "                     bisect (recursive bisection of the core graph with METIS along the mesh); greedy and\n"
    "                     bisect are followed by local refinement (default bisect)\n"
    "  --seed N           random seed for the connectivity, below 2^63 (default 1)\n"
    "  --dt MS            step of a NIR graph in ms, above 0 (default 1)\n"
    "  --out FILE         where to write the placement (default placement.json)\n"
    "  --json             print one JSON object\n"
    "  -h, --help         show this help\n";

typedef struct {
    double min, max, sum;
} sm_span_t;

static void sm_span_add(sm_span_t *s, double v, int first)
{
    if (first || v < s->min)
        s->min = v;
    if (first || v > s->max)
        s->max = v;
    s->sum += v;
}

int sm_cmd_map(int argc, char **argv)
{
    enum { O_CHIP = 1, O_PLACER, O_SEED, O_OUT, O_JSON, O_DT };
    static const struct option opts[] = {{"chip", required_argument, 0, O_CHIP},
                                         {"placer", required_argument, 0, O_PLACER},
                                         {"seed", required_argument, 0, O_SEED},
                                         {"out", required_argument, 0, O_OUT},
                                         {"dt", required_argument, 0, O_DT},
                                         {"json", no_argument, 0, O_JSON},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *chipspec = "loihi", *out = "placement.json", *network = NULL;
    sm_placer_t placer = SM_PLACE_BISECT;
    uint64_t seed = 1;
    double dt = 0;
    int json = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case O_CHIP:
            chipspec = optarg;
            break;
        case O_PLACER:
            if (sm_placer_parse(optarg, &placer) != 0) {
                fprintf(stderr, "spikemesh map: --placer '%s': unknown (known: order, greedy, bisect)\n", optarg);
                return SM_EXIT_BADINPUT;
            }
            break;
        case O_SEED: /* as `run` parses it */
            if (sm_cli_u64("map", "--seed", optarg, &seed))
                return SM_EXIT_BADINPUT;
            if (seed > (uint64_t)INT64_MAX) { /* the placement file holds the seed as a signed 64-bit integer */
                fprintf(stderr, "spikemesh map: --seed '%s': must be below 2^63\n", optarg);
                return SM_EXIT_BADINPUT;
            }
            break;
        case O_DT: /* as `run` parses it */
            if (sm_cli_double("map", "--dt", optarg, &dt))
                return SM_EXIT_BADINPUT;
            if (!(dt > 0)) {
                fprintf(stderr, "spikemesh map: --dt '%s': must be a positive number of ms\n", optarg);
                return SM_EXIT_BADINPUT;
            }
            break;
        case O_OUT:
            out = optarg;
            break;
        case O_JSON:
            json = 1;
            break;
        case 'h':
            fputs(sm_usage_map, stdout);
            return 0;
        case ':':
            fprintf(stderr, "spikemesh map: option '%s' needs a value (see --help)\n", argv[optind - 1]);
            return SM_EXIT_BADINPUT;
        default:
            /* optopt: the option's value for a long option given a value it does not take, the letter of an
             * unknown short option, 0 for an unknown long option */
            if (optopt >= O_CHIP && optopt <= O_DT) {
                for (const struct option *o = opts; o->name; o++)
                    if (o->val == optopt)
                        fprintf(stderr, "spikemesh map: option '--%s' takes no value (see --help)\n", o->name);
            } else if (optopt == 'h') {
                fprintf(stderr, "spikemesh map: option '--help' takes no value\n");
            } else if (optopt != 0) {
                fprintf(stderr, "spikemesh map: unknown option '-%c' (see --help)\n", optopt);
            } else {
                fprintf(stderr, "spikemesh map: unknown option '%s' (see --help)\n", argv[optind - 1]);
            }
            return SM_EXIT_BADINPUT;
        }
    }
    if (optind < argc)
        network = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "spikemesh map: unexpected argument '%s' (see --help)\n", argv[optind]);
        return SM_EXIT_BADINPUT;
    }
    if (!network) {
        fprintf(stderr, "spikemesh map: which network? (see --help)\n");
        return SM_EXIT_BADINPUT;
    }
    sm_errbuf_t eb = {0};
    sm_net_t net;
    sm_chip_t chip;
    sm_deploy_t dep;
    uint64_t t0 = uv_hrtime();
    if (sm_cli_load_network(network, dt, &net, &eb) != 0) {
        fprintf(stderr, "spikemesh map: %s\n", eb.msg);
        return SM_EXIT_BADINPUT;
    }
    if (sm_chip_resolve(chipspec, &chip, &eb) != 0) {
        fprintf(stderr, "spikemesh map: %s\n", eb.msg);
        sm_net_free(&net);
        return SM_EXIT_BADINPUT;
    }
    if (sm_cli_check_writable(out) != 0) { /* refuse an unwritable --out before the work */
        fprintf(stderr, "spikemesh map: --out '%s': cannot write the file: %s\n", out, strerror(errno));
        sm_net_free(&net);
        return SM_EXIT_BADINPUT;
    }
    sm_deploy_opts_t dop = {.placer = placer, .estimate = 1, .compress_all = 1};
    if (sm_deploy_build_ex(&net, &chip, seed, &dop, &dep, &eb) != 0) {
        sm_cli_network_error("map", network, &eb);
        sm_net_free(&net);
        return SM_EXIT_BADINPUT;
    }
    double secs = (double)(uv_hrtime() - t0) * 1e-9;
    if (sm_placement_write(&dep, out, &eb) != 0) {
        fprintf(stderr, "spikemesh map: %s\n", eb.msg);
        sm_deploy_free(&dep);
        sm_net_free(&net);
        return SM_EXIT_BADINPUT;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    sm_span_t sn = {0}, sm = {0}, sfi = {0}, sfo = {0};
    for (uint32_t k = 0; k < dep.ncores; k++) {
        sm_span_add(&sn, dep.cores[k].count, k == 0);
        sm_span_add(&sm, (double)dep.cores[k].syn_bytes, k == 0);
        sm_span_add(&sfi, dep.cores[k].fan_in, k == 0);
        sm_span_add(&sfo, dep.cores[k].fan_out, k == 0);
    }
    double tree_hops = 0; /* link traversals when every neuron spikes once */
    for (uint32_t q = 0; q < dep.npieces; q++)
        tree_hops += (double)dep.pieces[q].hops * dep.pieces[q].count;
    double nc = dep.ncores ? dep.ncores : 1;
    /* the deployment's own memory: synapses, rows, cores, pieces, routing tables and recorded trees */
    double dep_bytes = (double)dep.nsyn * sizeof(sm_syn_t) + (double)(dep.n + 1) * sizeof(uint64_t) +
                       (double)dep.n * sizeof(uint32_t) + (double)dep.ncores * sizeof(sm_core_t) +
                       (double)dep.npieces * (sizeof(sm_piece_t) + sizeof(uint64_t)) +
                       (double)dep.table_entries * sizeof(sm_route_entry_t) +
                       (double)dep.tree_off[dep.npieces] * sizeof(uint64_t);
    if (json) {
        json_t *o = json_pack(
            "{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:{s:{s:f,s:f,s:f,s:I},s:{s:f,s:f,s:f,s:I},s:{s:f,s:f,s:f,s:I},"
            "s:{s:f,s:f,s:f,s:I}},s:{s:f,s:f,s:f},s:{s:I,s:I,s:I,s:I,s:I},s:s,s:f,s:I,s:f}",
            "network", net.name, "chip", chip.name, "placer", sm_placer_name(placer), "neurons", (json_int_t)dep.n,
            "synapses", (json_int_t)dep.nsyn, "cores_used", (json_int_t)dep.ncores, "partition_rounds",
            (json_int_t)dep.fanout_rounds, "utilization", "neurons", "min", sn.min, "mean", sn.sum / nc, "max",
            sn.max, "limit", (json_int_t)chip.max_neurons, "synapse_bytes", "min", sm.min, "mean", sm.sum / nc,
            "max", sm.max, "limit", (json_int_t)chip.synapse_memory, "fan_in", "min", sfi.min, "mean", sfi.sum / nc,
            "max", sfi.max, "limit", (json_int_t)chip.max_fan_in, "fan_out", "min", sfo.min, "mean", sfo.sum / nc,
            "max", sfo.max, "limit", (json_int_t)chip.max_fan_out, "estimated_traffic", "pair_hops_in_order",
            dep.est_hops_order, "pair_hops", dep.est_hops, "tree_hops", tree_hops, "tables", "entries_before",
            (json_int_t)dep.table_entries_uncompressed, "max_router_before", (json_int_t)dep.max_table_uncompressed,
            "entries", (json_int_t)dep.table_entries, "max_router", (json_int_t)dep.max_table, "capacity",
            (json_int_t)chip.table_entries, "placement_file", out, "seconds", secs, "peak_rss_kib",
            (json_int_t)ru.ru_maxrss, "deployment_bytes", dep_bytes);
        if (sm_cli_put_json("map", o) != 0) {
            sm_deploy_free(&dep);
            sm_net_free(&net);
            return SM_EXIT_BADINPUT;
        }
    } else {
        printf("spikemesh map: %s on %s (%ux%u tiles x %u cores), placer %s, seed %llu\n", net.name, chip.name,
               chip.width, chip.height, chip.cores_per_tile, sm_placer_name(placer), (unsigned long long)seed);
        printf("  %-15s %u of %u, in %u partition round%s\n", "cores used", dep.ncores,
               chip.width * chip.height * chip.cores_per_tile, dep.fanout_rounds, dep.fanout_rounds == 1 ? "" : "s");
        printf("  %-15s %-14s %10s %10s %10s %10s\n", "per core", "", "min", "mean", "max", "limit");
        printf("  %-15s %-14s %10.0f %10.1f %10.0f %10u\n", "", "neurons", sn.min, sn.sum / nc, sn.max,
               chip.max_neurons);
        printf("  %-15s %-14s %10.0f %10.1f %10.0f %10llu\n", "", "synapse bytes", sm.min, sm.sum / nc, sm.max,
               (unsigned long long)chip.synapse_memory);
        char lfi[16] = "none", lfo[16] = "none"; /* UINT32_MAX: the chip sets no limit */
        if (chip.max_fan_in != UINT32_MAX)
            snprintf(lfi, sizeof lfi, "%u", chip.max_fan_in);
        if (chip.max_fan_out != UINT32_MAX)
            snprintf(lfo, sizeof lfo, "%u", chip.max_fan_out);
        printf("  %-15s %-14s %10.0f %10.1f %10.0f %10s\n", "", "fan-in", sfi.min, sfi.sum / nc, sfi.max, lfi);
        printf("  %-15s %-14s %10.0f %10.1f %10.0f %10s\n", "", "fan-out", sfo.min, sfo.sum / nc, sfo.max, lfo);
        printf("  %-15s %.4g packets x hops between cores (in order: %.4g, %.1f%% less); %.4g link traversals "
               "when every neuron spikes once\n",
               "traffic", dep.est_hops, dep.est_hops_order,
               dep.est_hops_order > 0 ? 100.0 * (1.0 - dep.est_hops / dep.est_hops_order) : 0.0, tree_hops);
        printf("  %-15s %llu entries in all, %u in the fullest router before compression; %llu and %u after "
               "(ratio %.2f; capacity %u)\n", "routing tables", (unsigned long long)dep.table_entries_uncompressed,
               dep.max_table_uncompressed, (unsigned long long)dep.table_entries, dep.max_table,
               dep.table_entries ? (double)dep.table_entries_uncompressed / (double)dep.table_entries : 1.0,
               chip.table_entries);
        printf("  %-15s %.3f s, peak memory %.1f MiB (the deployment itself: %.1f MiB)\n", "mapping", secs,
               (double)ru.ru_maxrss / 1024.0, dep_bytes / 1048576.0);
        printf("  %-15s %s (spikemesh run %s --chip %s --placement %s)\n", "placement", out, network, chipspec, out);
    }
    sm_deploy_free(&dep);
    sm_net_free(&net);
    return 0;
}
