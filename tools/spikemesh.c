/* tools/spikemesh.c: the spikemesh command line: run, info, presets (and --help on each). */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <jansson.h>
#include <uv.h>

#include "config.h"
#include "tools/cli.h"
#include "spikemesh/spikemesh.h"

#define EXIT_BADINPUT 2
#define EXIT_INTERRUPTED 130

static const char *const sm_usage_main =
    "usage: spikemesh COMMAND [OPTIONS]\n"
    "\n"
    "Simulates spiking networks deployed on a mesh of neuromorphic cores.\n"
    "\n"
    "commands:\n"
    "  run [NETWORK]     simulate a network on a chip and print a summary (default: the built-in cuba)\n"
    "  info NETWORK      sizes, synapses, cores, memory and routing tables a network needs on a chip\n"
    "  presets           list the built-in chip presets\n"
    "  map NETWORK       partition and place a network (--placer order|greedy|bisect); writes placement.json\n"
    "  traffic           synthetic traffic on the cycle-level mesh model: latency, throughput, saturation\n"
    "  train TASK        train a recurrent spiking network with e-prop (pattern, evidence or a task JSON file)\n"
    "  help [COMMAND]    show help for a command\n"
    "\n"
    "NETWORK is a network JSON file (docs/network-format.md), a NIR graph (a .nir file, docs/nir.md) or a\n"
    "built-in network: cuba (4000 neurons) or cuba:N. Run 'spikemesh COMMAND --help' for the options of a command.\n";

static const char *const sm_usage_run =
    "usage: spikemesh run [NETWORK] [OPTIONS]\n"
    "\n"
    "Simulates NETWORK (default: cuba) on a chip and prints a summary.\n"
    "\n"
    "options:\n"
    "  --chip SPEC        chip preset (loihi, small), PRESET:WxH to resize its mesh, or a chip JSON file\n"
    "                     (docs/chip-format.md); default loihi\n"
    "  --duration MS      biological time to simulate in ms (default: the network's duration_ms, else 1000),\n"
    "                     in whole steps: a remainder shorter than a step is not run\n"
    "  --seed N           random seed for connectivity, initial values and inputs (default 1)\n"
    "  --input FILE       spikes of the network's inputs (NIR Input nodes): a \"step,neuron\" CSV file\n"
    "                     (docs/nir.md)\n"
    "  --dt MS            step of a NIR graph in ms (default 1); JSON networks give their own dt_ms\n"
    "  --out DIR          write spikes.csv, traffic.json and summary.json into DIR (created if missing)\n"
    "  --json             print the summary as one JSON object instead of text\n"
    "  --realtime         pace the simulation at one step per dt of wall time; count steps that overran, and\n"
    "                     (with the timing model, which it turns on) steps the chip itself would overrun\n"
    "  --threads N        worker threads (default: one per CPU, at most one per 16384 neurons); results\n"
    "                     are identical for any N\n"
    "  --split S          how the neurons to update are split between the threads: adapt (default: cores at\n"
    "                     the borders move, between batches of steps, toward the threads that finish sooner;\n"
    "                     fixed when there are more threads than CPUs), fixed (equal work, never moved) or\n"
    "                     shuffle (moved at random, to check that results do not depend on it); results are\n"
    "                     identical for each\n"
    "  --placer NAME      how cores are placed on the mesh: order (default), greedy or bisect (see map --help)\n"
    "  --placement FILE   use the partition and placement written by `spikemesh map`\n"
    "  --precision P      neuron state in double (default) or single precision\n"
    "  --profile          print the time each thread spent in each phase of the step (update, route, record\n"
    "                     and wait), in all and in the median step, and the steps of 4x the median or more\n"
    "                     (often held up by other work on the machine) with the time they lost\n"
    "  --timing           model each step's time and energy on the chip (docs/timing.md)\n"
    "  --mesh-model M     mesh time in that model: zero-load (default: packets never contend) or cycle\n"
    "                     (the cycle-level mesh: buffers, arbitration, backpressure); cycle implies --timing\n"
    "  --progress         always show the progress bar (default: only when stderr is a terminal)\n"
    "  --no-progress      never show it\n"
    "  -h, --help         show this help\n"
    "\n"
    "environment: SPIKEMESH_SIMD=avx512|avx2|c caps the update's vector loop (default: the widest the CPU\n"
    "has; the results are the same with each)\n"
    "\n"
    "exit status: 0 done, 2 bad input (the message says what and where), 130 stopped by SIGINT/SIGTERM\n"
    "(outputs are complete up to the last finished step).\n";

static const char *const sm_usage_info =
    "usage: spikemesh info NETWORK [OPTIONS]\n"
    "\n"
    "Builds the deployment of NETWORK on a chip without simulating it, and prints its sizes: neurons,\n"
    "synapses, cores and synapse memory needed, fan-in, routing table entries.\n"
    "\n"
    "options:\n"
    "  --chip SPEC        chip preset, PRESET:WxH or chip JSON file (default loihi)\n"
    "  --seed N           random seed for the connectivity (default 1)\n"
    "  --dt MS            step of a NIR graph in ms (default 1), which sets its delays in steps\n"
    "  --json             print one JSON object\n"
    "  -h, --help         show this help\n";

static const char *const sm_usage_presets =
    "usage: spikemesh presets [--json]\n"
    "\n"
    "Lists the built-in chip presets and their per-core limits.\n";


static void sm_print_count(const char *label, uint64_t v)
{
    char buf[32], out[48];
    int n = snprintf(buf, sizeof buf, "%llu", (unsigned long long)v), o = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = buf[i];
    }
    out[o] = '\0';
    printf("  %-15s %s\n", label, out);
}

typedef struct {
    const char *network, *chip, *out, *input, *placement;
    sm_placer_t placer;
    int placer_given; /* --placer on the command line */
    double duration, dt;
    uint64_t seed;
    uint64_t threads;
    int json, realtime, progress, help, single, profile, timing, mesh_cycle, split;
} sm_cli_t;

static int sm_cli_parse(int argc, char **argv, sm_cli_t *cli, int allow_run_opts)
{
    enum { O_CHIP = 1, O_DURATION, O_SEED, O_OUT, O_JSON, O_REALTIME, O_THREADS, O_PRECISION, O_PROFILE, O_TIMING,
           O_MESHMODEL, O_INPUT, O_DT, O_PLACER, O_PLACEMENT, O_PROGRESS,
           O_NOPROGRESS, O_SPLIT };
    static const struct option run_opts[] = {
        {"chip", required_argument, 0, O_CHIP},         {"duration", required_argument, 0, O_DURATION},
        {"seed", required_argument, 0, O_SEED},         {"out", required_argument, 0, O_OUT},
        {"json", no_argument, 0, O_JSON},               {"realtime", no_argument, 0, O_REALTIME},
        {"threads", required_argument, 0, O_THREADS},   {"precision", required_argument, 0, O_PRECISION},
        {"profile", no_argument, 0, O_PROFILE},        {"timing", no_argument, 0, O_TIMING},
        {"mesh-model", required_argument, 0, O_MESHMODEL},
        {"input", required_argument, 0, O_INPUT},       {"dt", required_argument, 0, O_DT},
        {"placer", required_argument, 0, O_PLACER},     {"placement", required_argument, 0, O_PLACEMENT},
        {"progress", no_argument, 0, O_PROGRESS},       {"no-progress", no_argument, 0, O_NOPROGRESS},
        {"split", required_argument, 0, O_SPLIT},
        {"help", no_argument, 0, 'h'},                  {0, 0, 0, 0}};
    int c, li = -1;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", run_opts, &li)) != -1) {
        if (!allow_run_opts && (c == O_DURATION || c == O_OUT || c == O_REALTIME || c == O_PROGRESS ||
                                c == O_NOPROGRESS || c == O_THREADS || c == O_PRECISION || c == O_PROFILE ||
                                c == O_TIMING || c == O_MESHMODEL || c == O_INPUT || c == O_SPLIT)) {
            /* Named from the table: argv[optind - 1] is the option's value when it takes one. */
            fprintf(stderr, "spikemesh %s: option '--%s' belongs to 'run' (see --help)\n", argv[0],
                    run_opts[li].name);
            return -1;
        }
        switch (c) {
        case O_CHIP:
            cli->chip = optarg;
            break;
        case O_DURATION:
            if (sm_cli_double(argv[0], "--duration", optarg, &cli->duration))
                return -1;
            break;
        case O_SEED:
            if (sm_cli_u64(argv[0], "--seed", optarg, &cli->seed))
                return -1;
            if (cli->seed > (uint64_t)INT64_MAX) { /* seeds are written to JSON as signed 64-bit integers */
                fprintf(stderr, "spikemesh %s: --seed '%s': must be below 2^63\n", argv[0], optarg);
                return -1;
            }
            break;
        case O_OUT:
            cli->out = optarg;
            break;
        case O_JSON:
            cli->json = 1;
            break;
        case O_REALTIME:
            cli->realtime = 1;
            break;
        case O_PROGRESS:
            cli->progress = 1;
            break;
        case O_THREADS:
            if (sm_cli_u64(argv[0], "--threads", optarg, &cli->threads))
                return -1;
            if (cli->threads < 1 || cli->threads > 1024) {
                fprintf(stderr, "spikemesh %s: --threads '%s': must be between 1 and 1024\n", argv[0], optarg);
                return -1;
            }
            break;
        case O_PRECISION:
            if (strcmp(optarg, "double") == 0)
                cli->single = 0;
            else if (strcmp(optarg, "single") == 0)
                cli->single = 1;
            else {
                fprintf(stderr, "spikemesh %s: --precision '%s': must be double or single\n", argv[0], optarg);
                return -1;
            }
            break;
        case O_SPLIT:
            if (strcmp(optarg, "adapt") == 0)
                cli->split = SM_SPLIT_ADAPT;
            else if (strcmp(optarg, "fixed") == 0)
                cli->split = SM_SPLIT_FIXED;
            else if (strcmp(optarg, "shuffle") == 0)
                cli->split = SM_SPLIT_SHUFFLE;
            else {
                fprintf(stderr, "spikemesh %s: --split '%s': must be adapt, fixed or shuffle\n", argv[0], optarg);
                return -1;
            }
            break;
        case O_PROFILE:
            cli->profile = 1;
            break;
        case O_PLACER:
            cli->placer_given = 1;
            if (sm_placer_parse(optarg, &cli->placer) != 0) {
                fprintf(stderr, "spikemesh %s: --placer '%s': unknown (known: order, greedy, bisect)\n", argv[0],
                        optarg);
                return -1;
            }
            break;
        case O_PLACEMENT:
            cli->placement = optarg;
            break;
        case O_TIMING:
            cli->timing = 1;
            break;
        case O_MESHMODEL:
            if (strcmp(optarg, "zero-load") == 0) {
                cli->mesh_cycle = 0;
            } else if (strcmp(optarg, "cycle") == 0) {
                cli->mesh_cycle = 1;
                cli->timing = 1;
            } else {
                fprintf(stderr, "spikemesh %s: --mesh-model '%s': must be zero-load or cycle\n", argv[0], optarg);
                return -1;
            }
            break;
        case O_INPUT:
            cli->input = optarg;
            break;
        case O_DT:
            if (sm_cli_double(argv[0], "--dt", optarg, &cli->dt))
                return -1;
            if (!(cli->dt > 0)) {
                fprintf(stderr, "spikemesh %s: --dt '%s': must be a positive number of ms\n", argv[0], optarg);
                return -1;
            }
            break;
        case O_NOPROGRESS:
            cli->progress = 0;
            break;
        case 'h':
            cli->help = 1;
            return 0;
        case ':':
            fprintf(stderr, "spikemesh %s: option '%s' needs a value (see --help)\n", argv[0], argv[optind - 1]);
            return -1;
        default:
            /* getopt sets optopt to the option's value for a long option given a value it does not take,
             * to the letter for an unknown short option (then optind may still point at its word), and to 0
             * for an unknown long option. */
            if (optopt >= O_CHIP && optopt <= O_NOPROGRESS) {
                for (const struct option *o = run_opts; o->name; o++)
                    if (o->val == optopt)
                        fprintf(stderr, "spikemesh %s: option '--%s' takes no value (see --help)\n", argv[0],
                                o->name);
            } else if (optopt == 'h') {
                fprintf(stderr, "spikemesh %s: option '--help' takes no value\n", argv[0]);
            } else if (optopt != 0) {
                fprintf(stderr, "spikemesh %s: unknown option '-%c' (see --help)\n", argv[0], optopt);
            } else {
                fprintf(stderr, "spikemesh %s: unknown option '%s' (see --help)\n", argv[0], argv[optind - 1]);
            }
            return -1;
        }
    }
    if (optind < argc)
        cli->network = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "spikemesh %s: unexpected argument '%s' (see --help)\n", argv[0], argv[optind]);
        return -1;
    }
    return 0;
}

static int sm_cmd_run(int argc, char **argv)
{
    sm_cli_t cli = {.network = NULL, .chip = "loihi", .duration = -1.0, .seed = 1, .progress = -1};
    sm_errbuf_t eb = {0};
    sm_net_t net;
    sm_chip_t chip;
    sm_deploy_t dep;
    sm_sim_t *sim = NULL;
    int rc, status = EXIT_BADINPUT;
    if (sm_cli_parse(argc, argv, &cli, 1) != 0)
        return EXIT_BADINPUT;
    if (cli.help) {
        fputs(sm_usage_run, stdout);
        return 0;
    }
    const char *simd = getenv("SPIKEMESH_SIMD");
    if (simd && *simd) { /* caps the update's vector loop (results do not change) */
        int level = strcmp(simd, "avx512") == 0 ? 2 : strcmp(simd, "avx2") == 0 ? 1 : strcmp(simd, "c") == 0 ? 0 : -1;
        if (level < 0) {
            fprintf(stderr, "spikemesh: SPIKEMESH_SIMD='%s': must be avx512, avx2 or c\n", simd);
            return EXIT_BADINPUT;
        }
        sm_core_simd_limit(level);
    }
    if (!cli.network)
        cli.network = "cuba";
    uint64_t t0 = uv_hrtime();
    double run_ms = 0.0; /* the run's length: --duration, else the network's duration_ms, else 1000 ms */
    if ((rc = sm_cli_load_network(cli.network, cli.dt, &net, &eb)) == 0) {
        const double file_ms = net.duration;
        run_ms = cli.duration >= 0 ? cli.duration : file_ms > 0 ? file_ms : 1000.0;
        if (cli.input) { /* the input keeps only the spikes within the run */
            net.duration = run_ms;
            rc = sm_net_load_input(&net, cli.input, &eb);
            net.duration = file_ms;
        }
    }
    if (rc != 0) {
        fprintf(stderr, "spikemesh run: %s\n", eb.msg);
        sm_net_free(&net);
        return EXIT_BADINPUT;
    }
    if ((rc = sm_chip_resolve(cli.chip, &chip, &eb)) != 0) {
        fprintf(stderr, "spikemesh run: %s\n", eb.msg);
        sm_net_free(&net);
        return EXIT_BADINPUT;
    }
    sm_placement_t pl = {0};
    if (cli.placement && cli.placer_given) {
        fprintf(stderr, "spikemesh run: --placer does not apply with --placement: the placement file says where "
                        "the cores go (it records the placer that made it)\n");
        sm_net_free(&net);
        return EXIT_BADINPUT;
    }
    if (cli.placement && sm_placement_load(cli.placement, &pl, &eb) != 0) {
        fprintf(stderr, "spikemesh run: %s\n", eb.msg);
        sm_net_free(&net);
        return EXIT_BADINPUT;
    }
    sm_deploy_opts_t dop = {.placer = cli.placer, .placement = cli.placement ? &pl : NULL};
    rc = sm_deploy_build_ex(&net, &chip, cli.seed, &dop, &dep, &eb);
    sm_placement_free(&pl);
    if (rc != 0) {
        if (cli.placement)
            fprintf(stderr, "spikemesh run: %s: %s\n", cli.placement, eb.msg);
        else
            sm_cli_network_error("run", cli.network, &eb);
        sm_net_free(&net);
        return EXIT_BADINPUT;
    }
    double setup;
    sm_run_opts_t ro = {.duration = run_ms,
                        .realtime = cli.realtime,
                        .progress = cli.json ? (cli.progress > 0) : cli.progress,
                        .threads = (uint32_t)cli.threads,
                        .single = cli.single,
                        .profile = cli.profile,
                        .timing = cli.timing || cli.realtime, /* real time: report modelled overruns */
                        .mesh_cycle = cli.mesh_cycle,
                        .split = cli.split,
                        .out_dir = cli.out,
                        .handle_signals = 1};
    if (cli.duration < 0 && net.duration > 0 && floor(net.duration / net.dt + 1e-9) > 1e12) {
        /* Checked here so that the message names the file's duration_ms, not --duration. */
        fprintf(stderr, "spikemesh run: %s: duration_ms %g is more than 1e12 steps of %g ms, the most supported "
                "(--duration overrides it)\n", cli.network, net.duration, net.dt);
        goto done;
    }
    const double default_steps = floor(ro.duration / net.dt + 1e-9);
    if (cli.duration < 0 && net.duration <= 0 && (default_steps > 1e12 || default_steps < 1)) {
        /* the default length, named as such (sm_sim_create's message would name --duration) */
        fprintf(stderr, "spikemesh run: %s: the default duration of %g ms is %s dt_ms %g%s\n", cli.network,
                ro.duration, default_steps < 1 ? "shorter than one step of" : "more than 1e12 steps of", net.dt,
                default_steps < 1 ? " (give --duration, or duration_ms in the network)"
                                  : ", the most supported (give --duration)");
        goto done;
    }
    if ((rc = sm_sim_create(&sim, &dep, &ro, &eb)) != 0) {
        if (strncmp(eb.msg, "network '", 9) == 0) /* the network's parameters, not --duration or memory */
            sm_cli_network_error("run", cli.network, &eb);
        else
            fprintf(stderr, "spikemesh run: %s\n", eb.msg);
        goto done;
    }
    sm_deploy_drop_synapses(&dep); /* the simulation holds its own copy, by worker */
    setup = (double)(uv_hrtime() - t0) * 1e-9;
    sm_sim_set_setup_seconds(sim, setup);
    /* from the end of the loop until the outputs are written, SIGINT and SIGTERM are ignored (runtime/sim.c) */
    if ((rc = sm_sim_run(sim, &eb)) != 0 || (rc = sm_sim_write_outputs(sim, &eb)) != 0) {
        fprintf(stderr, "spikemesh run: %s\n", eb.msg);
        goto done;
    }
    const sm_stats_t *st = sm_sim_stats(sim);
    if (cli.json) {
        char *txt = sm_sim_summary_json(sim, 0);
        if (!txt) {
            fprintf(stderr, "spikemesh run: cannot write the JSON summary (out of memory)\n");
            goto done;
        }
        puts(txt); /* a failed write is caught as main() ends */
        free(txt);
    } else {
        double secs = (double)st->steps * net.dt * 1e-3;
        const uint64_t *ps = sm_sim_pop_spikes(sim);
        printf("spikemesh run: %s on %s (%ux%u tiles x %u cores), seed %llu\n", net.name, chip.name, chip.width,
               chip.height, chip.cores_per_tile, (unsigned long long)cli.seed);
        sm_print_count("neurons", dep.n);
        sm_print_count("synapses", dep.nsyn);
        printf("  %-15s %u of %u\n", "cores used", dep.ncores, chip.width * chip.height * chip.cores_per_tile);
        printf("  %-15s %llu of %g ms (%g ms)\n", "steps", (unsigned long long)st->steps, net.dt, secs * 1e3);
        sm_print_count("spikes", st->spikes);
        printf("  %-15s %.3f Hz\n", "mean rate", secs > 0 ? (double)st->spikes / dep.n / secs : 0.0);
        for (uint32_t p = 0; p < net.npops; p++)
            printf("    %-13s %.3f Hz (%u neurons)\n", net.pops[p].name,
                   secs > 0 ? (double)ps[p] / net.pops[p].size / secs : 0.0, net.pops[p].size);
        sm_print_count("packets", st->packets);
        sm_print_count("hops", st->hops);
        sm_print_count("deliveries", st->deliveries);
        sm_print_count("synaptic ops", st->synaptic_ops);
        {
            const sm_mesh_t *m = &dep.mesh;
            uint64_t best;
            uint32_t bt;
            int bd;
            sm_mesh_busiest_link(m, &bt, &bd, &best);
            if (bd >= 0) {
                uint32_t nb = sm_mesh_neighbor(m, bt, bd);
                printf("  %-15s (%u,%u) -> (%u,%u): %llu packets\n", "busiest link", bt % m->width, bt / m->width,
                       nb % m->width, nb / m->width, (unsigned long long)best);
            } else {
                printf("  %-15s none (all traffic stays within tiles)\n", "busiest link");
            }
        }
        printf("  %-15s %.3f s setup, %.3f s loop (%.0f steps per wall second)\n", "wall time", setup,
               st->loop_seconds, st->loop_seconds > 0 ? (double)st->steps / st->loop_seconds : 0.0);
        printf("  %-15s %u thread%s, %s precision, %s update loop\n", "workers", st->threads,
               st->threads == 1 ? "" : "s", cli.single ? "single" : "double", sm_core_simd());
        if (cli.profile && st->thread_phase_seconds)
            for (uint32_t w = 0; w < st->threads; w++) {
                const double *t = st->thread_phase_seconds + 3 * (size_t)w;
                const double *m = st->thread_phase_median + 3 * (size_t)w;
                const double *sl = st->thread_slow_steps + 3 * (size_t)w;
                printf("  %-15s update %.3f s, route %.3f s, record and wait %.3f s (thread %u, %u neurons at "
                       "the end); median step %.1f + %.1f + %.1f us; %.0f step%s of %gx the median or more, "
                       "%.3f s beyond it\n",
                       w == 0 ? "profile" : "", t[0], t[1], t[2], w, st->thread_neurons[w], m[0] * 1e6, m[1] * 1e6,
                       m[2] * 1e6, sl[1], sl[1] == 1.0 ? "" : "s", SM_PROFILE_SLOW_FACTOR, sl[2]);
            }
        if (cli.realtime)
            printf("  %-15s %llu steps finished late\n", "overruns", (unsigned long long)st->overruns);
        sm_timing_t tm;
        if (sm_sim_timing(sim, &tm) == 0) {
            static const char *const kinds[SM_ENERGY_KINDS] = {"active neurons", "idle neurons", "synaptic ops",
                                                               "in-tile spikes", "east-west hops",
                                                               "north-south hops", "chip-to-chip hops",
                                                               "static"};
            printf("  %-15s %.3f ms on the chip for %.3f ms of biology (%s mesh); per step mean %.0f ns, p50 %.0f, "
                   "p99 %.0f, max %.0f\n",
                   "modelled time", tm.total_ns * 1e-6, secs * 1e3, tm.cycle_model ? "cycle-level" : "zero-load",
                   tm.mean_ns, tm.p50_ns, tm.p99_ns, tm.max_ns);
            printf("  %-15s %llu steps bound by a core, %llu by the mesh; barrier %.0f ns; %llu steps longer "
                   "than dt\n",
                   "critical path", (unsigned long long)tm.core_bound_steps, (unsigned long long)tm.mesh_bound_steps,
                   tm.barrier_ns, (unsigned long long)tm.steps_over_dt);
            if (tm.noc) {
                sm_noc_totals_t nt = sm_noc_totals(tm.noc);
                printf("  %-15s %llu copies sent, %llu delivered, %llu dropped, %llu re-injected\n", "mesh (cycles)",
                       (unsigned long long)nt.sent, (unsigned long long)nt.delivered, (unsigned long long)nt.dropped,
                       (unsigned long long)nt.reinjected);
            }
            for (uint32_t k = 0; k < tm.nslowest && k < 3; k++)
                printf("    slow step %-6llu %.0f ns: core %u %.0f ns + mesh %.0f ns + barrier %.0f ns\n",
                       (unsigned long long)tm.slowest[k].step, tm.slowest[k].total_ns, tm.slowest[k].core,
                       tm.slowest[k].core_ns, tm.slowest[k].drain_ns, tm.slowest[k].barrier_ns);
            printf("  %-15s %.3f uJ (%.3f nJ per step):", "energy", tm.total_energy_pj * 1e-6,
                   tm.steps ? tm.total_energy_pj * 1e-3 / (double)tm.steps : 0.0);
            for (int k = 0; k < SM_ENERGY_KINDS; k++)
                if (tm.energy_pj[k] > 0)
                    printf(" %s %.1f%%", kinds[k], 100.0 * tm.energy_pj[k] / tm.total_energy_pj);
            printf("\n");
        }
        if (cli.out)
            printf("  %-15s %s/{spikes.csv,traffic.json,summary.json,raster.svg,traffic.svg,spikes.vcd%s%s}\n",
                   "outputs", cli.out, cli.timing || cli.mesh_cycle ? ",trace.json" : "",
                   cli.mesh_cycle ? ",latency.csv" : "");
        if (st->interrupted)
            printf("  stopped by signal %d after %llu steps\n", st->signal, (unsigned long long)st->steps);
    }
    status = st->interrupted ? EXIT_INTERRUPTED : 0;
done:
    sm_sim_destroy(sim);
    sm_deploy_free(&dep);
    sm_net_free(&net);
    return status;
}

static int sm_cmd_info(int argc, char **argv)
{
    sm_cli_t cli = {.network = NULL, .chip = "loihi", .duration = -1.0, .seed = 1, .progress = -1};
    sm_errbuf_t eb = {0};
    sm_net_t net;
    sm_chip_t chip;
    sm_deploy_t dep;
    if (sm_cli_parse(argc, argv, &cli, 0) != 0)
        return EXIT_BADINPUT;
    if (cli.help) {
        fputs(sm_usage_info, stdout);
        return 0;
    }
    if (!cli.network) {
        fprintf(stderr, "spikemesh info: which network? (see --help)\n");
        return EXIT_BADINPUT;
    }
    if (sm_cli_load_network(cli.network, cli.dt, &net, &eb) != 0 || sm_chip_resolve(cli.chip, &chip, &eb) != 0) {
        fprintf(stderr, "spikemesh info: %s\n", eb.msg);
        sm_net_free(&net);
        return EXIT_BADINPUT;
    }
    if (sm_deploy_build(&net, &chip, cli.seed, &dep, &eb) != 0) {
        sm_cli_network_error("info", cli.network, &eb);
        sm_net_free(&net);
        return EXIT_BADINPUT;
    }
    uint64_t mem = 0, max_mem = 0;
    uint32_t max_n = 0, max_fi = 0, max_fo = 0;
    for (uint32_t c = 0; c < dep.ncores; c++) {
        mem += dep.cores[c].syn_bytes;
        if (dep.cores[c].syn_bytes > max_mem)
            max_mem = dep.cores[c].syn_bytes;
        if (dep.cores[c].count > max_n)
            max_n = dep.cores[c].count;
        if (dep.cores[c].fan_in > max_fi)
            max_fi = dep.cores[c].fan_in;
        if (dep.cores[c].fan_out > max_fo)
            max_fo = dep.cores[c].fan_out;
    }
    uint32_t tiles_used = dep.ncores ? (dep.ncores - 1) / chip.cores_per_tile + 1 : 0;
    if (cli.json) {
        json_t *o = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "network",
                              net.name, "chip", chip.name, "neurons", (json_int_t)dep.n, "populations",
                              (json_int_t)net.npops, "projections", (json_int_t)net.nprojs, "synapses",
                              (json_int_t)dep.nsyn, "synapse_memory_bytes", (json_int_t)mem, "cores_used",
                              (json_int_t)dep.ncores, "cores_available",
                              (json_int_t)chip.width * chip.height * chip.cores_per_tile, "tiles_used",
                              (json_int_t)tiles_used, "max_core_neurons", (json_int_t)max_n,
                              "max_core_synapse_bytes", (json_int_t)max_mem, "max_core_fan_in", (json_int_t)max_fi,
                              "max_core_fan_out", (json_int_t)max_fo, "pieces", (json_int_t)dep.npieces,
                              "table_entries", (json_int_t)dep.table_entries, "max_table_entries",
                              (json_int_t)dep.max_table);
        if (sm_cli_put_json("info", o) != 0) {
            sm_deploy_free(&dep);
            sm_net_free(&net);
            return SM_EXIT_BADINPUT;
        }
    } else {
        printf("spikemesh info: %s on %s (%ux%u tiles x %u cores), seed %llu\n", net.name, chip.name, chip.width,
               chip.height, chip.cores_per_tile, (unsigned long long)cli.seed);
        sm_print_count("neurons", dep.n);
        for (uint32_t p = 0; p < net.npops; p++)
            printf("    %-13s %u (%s)\n", net.pops[p].name, net.pops[p].size,
                   sm_pop_model_name(&net.pops[p]));
        sm_print_count("projections", net.nprojs);
        sm_print_count("synapses", dep.nsyn);
        printf("  %-15s %.1f KiB in all (%u bytes per synapse)\n", "synapse memory", (double)mem / 1024.0,
               chip.synapse_bytes);
        printf("  %-15s %u of %u (%u tiles)\n", "cores used", dep.ncores, chip.width * chip.height * chip.cores_per_tile,
               tiles_used);
        printf("  %-15s neurons %u/%u, synapse memory %.1f/%.1f KiB, fan-in %u/%u, fan-out %u\n", "fullest core",
               max_n, chip.max_neurons, (double)max_mem / 1024.0, (double)chip.synapse_memory / 1024.0, max_fi,
               chip.max_fan_in, max_fo);
        printf("  %-15s %u (one routing key range each)\n", "pieces", dep.npieces);
        printf("  %-15s %u partition round%s (fan-out)\n", "partitioning", dep.fanout_rounds,
               dep.fanout_rounds == 1 ? "" : "s");
        printf("  %-15s %llu in all, %u in the fullest router (capacity %u)\n", "table entries",
               (unsigned long long)dep.table_entries, dep.max_table, chip.table_entries);
    }
    sm_deploy_free(&dep);
    sm_net_free(&net);
    return 0;
}

static int sm_cmd_presets(int argc, char **argv)
{
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(sm_usage_presets, stdout);
            return 0;
        } else {
            fprintf(stderr, "spikemesh presets: unknown argument '%s' (see --help)\n", argv[i]);
            return EXIT_BADINPUT;
        }
    }
    const char *const *names, *const *about;
    uint32_t n = sm_chip_presets(&names, &about);
    if (json)
        printf("[");
    for (uint32_t i = 0; i < n; i++) {
        sm_chip_t c;
        sm_chip_preset(names[i], &c);
        if (json)
            printf("%s{\"name\":\"%s\",\"width\":%u,\"height\":%u,\"cores_per_tile\":%u,\"max_neurons\":%u,"
                   "\"synapse_memory_bytes\":%llu,\"synapse_bytes\":%u,\"max_fan_in\":%u,\"max_fan_out\":%u,"
                   "\"table_entries\":%u,\"max_delay_steps\":%u}",
                   i ? "," : "", c.name, c.width, c.height, c.cores_per_tile, c.max_neurons,
                   (unsigned long long)c.synapse_memory, c.synapse_bytes, c.max_fan_in, c.max_fan_out,
                   c.table_entries, c.max_delay_steps);
        else
            printf("%-8s %s\n         %ux%u tiles x %u cores; per core: %u neurons, %llu B synapse memory "
                   "(%u B/synapse), fan-in %u, fan-out %u, delays up to %u steps; %u routing entries per router\n",
                   c.name, about[i], c.width, c.height, c.cores_per_tile, c.max_neurons,
                   (unsigned long long)c.synapse_memory, c.synapse_bytes, c.max_fan_in, c.max_fan_out,
                   c.max_delay_steps, c.table_entries);
    }
    if (json)
        printf("]\n");
    else
        printf("\nAny preset takes :WxH to resize its mesh, e.g. --chip loihi:16x16.\n");
    return 0;
}

#define SM__COMMANDS "run, info, presets, map, traffic, train, help"

static int sm__main(int argc, char **argv);

int main(int argc, char **argv)
{
    int rc = sm__main(argc, argv);
    if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) { /* a full disk, a closed pipe: not a success */
        fprintf(stderr, "spikemesh: cannot write to stdout: %s\n", strerror(errno));
        rc = EXIT_BADINPUT;
    }
    if (sm_net_nir_broken()) { /* libhdf5 crashed on a damaged file: its clean-up at exit would crash again */
        fflush(stdout);
        fflush(stderr);
        _exit(rc);
    }
    return rc;
}

static int sm__main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(sm_usage_main, stderr);
        return EXIT_BADINPUT;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "run") == 0)
        return sm_cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "info") == 0)
        return sm_cmd_info(argc - 1, argv + 1);
    if (strcmp(cmd, "presets") == 0)
        return sm_cmd_presets(argc - 1, argv + 1);
    if (strcmp(cmd, "traffic") == 0)
        return sm_cmd_traffic(argc - 1, argv + 1);
    if (strcmp(cmd, "map") == 0)
        return sm_cmd_map(argc - 1, argv + 1);
    if (strcmp(cmd, "train") == 0)
        return sm_cmd_train(argc - 1, argv + 1);
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        const char *topic = argc > 2 ? argv[2] : NULL;
        if (!topic || strcmp(topic, "-h") == 0 || strcmp(topic, "--help") == 0 || strcmp(topic, "help") == 0)
            fputs(sm_usage_main, stdout);
        else if (strcmp(topic, "run") == 0)
            fputs(sm_usage_run, stdout);
        else if (strcmp(topic, "info") == 0)
            fputs(sm_usage_info, stdout);
        else if (strcmp(topic, "presets") == 0)
            fputs(sm_usage_presets, stdout);
        else if (strcmp(topic, "map") == 0 || strcmp(topic, "traffic") == 0 || strcmp(topic, "train") == 0) {
            char *av[3] = {(char *)topic, (char *)"--help", NULL};
            return strcmp(topic, "map") == 0       ? sm_cmd_map(2, av)
                   : strcmp(topic, "traffic") == 0 ? sm_cmd_traffic(2, av)
                                                   : sm_cmd_train(2, av);
        } else {
            fprintf(stderr, "spikemesh help: unknown command '%s' (commands: " SM__COMMANDS ")\n", topic);
            return EXIT_BADINPUT;
        }
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("spikemesh %s\n", PACKAGE_VERSION);
        return 0;
    }
    fprintf(stderr, "spikemesh: unknown command '%s' (commands: " SM__COMMANDS "; see spikemesh --help)\n", cmd);
    return EXIT_BADINPUT;
}
