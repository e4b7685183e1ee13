/* tests/test_sim.c: runs through the loop: identical spikes on different chips and placements, traffic and
 * operation counters that add up, and output files moved into place only when complete. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/sim_internal.h"
#include "spikemesh/spikemesh.h"
#include "tests/unit.h"

/* FNV-1a over (step, neuron) of every spike. */
static uint64_t run_digest(const char *netspec, const char *chipspec, uint64_t seed, uint64_t steps, uint64_t *nspikes)
{
    sm_net_t net;
    sm_chip_t chip;
    sm_deploy_t d;
    sm_sim_t *sim;
    sm_errbuf_t eb;
    sm_run_opts_t ro = {.duration = 1e9, .progress = 0};
    uint64_t h;
    if (sm_net_builtin(netspec, &net, &eb) || sm_chip_resolve(chipspec, &chip, &eb) ||
        sm_deploy_build(&net, &chip, seed, &d, &eb)) {
        CU_FAIL("setup");
        *nspikes = 0;
        return 0;
    }
    CU_ASSERT_EQUAL_FATAL(sm_sim_create(&sim, &d, &ro, &eb), 0);
    h = sm_test_spike_digest(sim, steps, nspikes);
    sm_sim_destroy(sim);
    sm_deploy_free(&d);
    sm_net_free(&net);
    return h;
}

static void test_same_spikes_any_chip(void)
{
    uint64_t n1, n2, n3, n4;
    uint64_t a = run_digest("cuba:2000", "loihi", 9, 2000, &n1);
    uint64_t b = run_digest("cuba:2000", "small:12x12", 9, 2000, &n2);
    uint64_t c = run_digest("cuba:2000", "loihi:3x3", 9, 2000, &n3);
    uint64_t e = run_digest("cuba:2000", "loihi", 10, 2000, &n4);
    CU_ASSERT(n1 > 1000);
    CU_ASSERT_EQUAL(n1, n2);
    CU_ASSERT_EQUAL(a, b);
    CU_ASSERT_EQUAL(a, c);
    CU_ASSERT_NOT_EQUAL(a, e); /* another seed, another network */
}

/* Counters add up: link packets = hops, core deliveries = deliveries, per-core synaptic ops = total;
 * every piece's hop count equals the links of its XY tree, recounted here from the destination tiles. */
static void test_counters(void)
{
    sm_net_t net;
    sm_chip_t chip;
    sm_deploy_t d;
    sm_sim_t *sim;
    sm_errbuf_t eb;
    char dir[] = "/tmp/sm_test_outXXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    sm_run_opts_t ro = {.duration = 100.0, .progress = 0, .out_dir = dir};
    CU_ASSERT_EQUAL_FATAL(sm_net_builtin("cuba:3000", &net, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_chip_resolve("small:12x12", &chip, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_deploy_build(&net, &chip, 2, &d, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_sim_create(&sim, &d, &ro, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_sim_run(sim, &eb), 0);
    const sm_stats_t *st = sm_sim_stats(sim);
    const sm_core_counters_t *cc = sm_sim_core_counters(sim);
    CU_ASSERT_EQUAL(st->steps, 1000);
    CU_ASSERT(st->spikes > 100);
    uint64_t links = 0, cores = 0, ops = 0, sent = 0, pops = 0;
    for (uint32_t i = 0; i < sm_mesh_tiles(&d.mesh) * SM_NDIRS; i++)
        links += d.mesh.link_packets[i];
    for (uint32_t c = 0; c < d.ncores; c++) {
        cores += cc[c].packets_in;
        ops += cc[c].synaptic_ops;
        sent += cc[c].spikes_sent;
        CU_ASSERT_EQUAL(cc[c].neuron_updates, (uint64_t)d.cores[c].count * 1000);
    }
    for (uint32_t p = 0; p < net.npops; p++)
        pops += sm_sim_pop_spikes(sim)[p];
    CU_ASSERT_EQUAL(links, st->hops);
    CU_ASSERT_EQUAL(cores, st->deliveries);
    CU_ASSERT_EQUAL(ops, st->synaptic_ops);
    CU_ASSERT_EQUAL(sent, st->spikes);
    CU_ASSERT_EQUAL(pops, st->spikes);
    CU_ASSERT_EQUAL(st->packets, st->spikes); /* every CUBA neuron has listeners */
    /* hops of each piece = links of the union of its XY paths */
    uint32_t tiles = sm_mesh_tiles(&d.mesh), path[64];
    uint8_t *used = malloc((size_t)tiles * tiles), *tile_dst = malloc(tiles);
    for (uint32_t q = 0; q < d.npieces; q++) {
        const sm_piece_t *pc = &d.pieces[q];
        uint32_t src = d.cores[pc->core].tile, count = 0;
        memset(used, 0, (size_t)tiles * tiles);
        memset(tile_dst, 0, tiles);
        for (uint32_t i = pc->first; i < pc->first + pc->count; i++)
            for (uint64_t s = d.row[i]; s < d.row[i + 1]; s++)
                tile_dst[d.cores[d.pieces[d.piece_of[SM_SYN_POST(d.syn[s].tgt)]].core].tile] = 1;
        for (uint32_t t = 0; t < tiles; t++) {
            if (!tile_dst[t])
                continue;
            uint32_t h = sm_mesh_xy_path(&d.mesh, src, t, path), prev = src;
            for (uint32_t k = 0; k < h; k++) {
                count += !used[(size_t)prev * tiles + path[k]];
                used[(size_t)prev * tiles + path[k]] = 1;
                prev = path[k];
            }
        }
        CU_ASSERT_EQUAL(pc->hops, count);
    }
    free(used);
    free(tile_dst);
    /* outputs: nothing in place before write_outputs, everything after, no .part left */
    char path_s[256], path_p[256];
    snprintf(path_s, sizeof path_s, "%s/spikes.csv", dir);
    snprintf(path_p, sizeof path_p, "%s/spikes.csv.part", dir);
    CU_ASSERT_NOT_EQUAL(access(path_s, F_OK), 0);
    CU_ASSERT_EQUAL_FATAL(sm_sim_write_outputs(sim, &eb), 0);
    CU_ASSERT_EQUAL(access(path_s, F_OK), 0);
    CU_ASSERT_NOT_EQUAL(access(path_p, F_OK), 0);
    FILE *f = fopen(path_s, "r");
    uint64_t lines = 0;
    int ch;
    while (f && (ch = fgetc(f)) != EOF)
        lines += ch == '\n';
    if (f)
        fclose(f);
    CU_ASSERT_EQUAL(lines, st->spikes + 1);
    const char *names[] = {"spikes.csv", "traffic.json", "summary.json"};
    for (int k = 0; k < 3; k++) {
        snprintf(path_s, sizeof path_s, "%s/%s", dir, names[k]);
        CU_ASSERT_EQUAL(access(path_s, F_OK), 0);
        remove(path_s);
    }
    rmdir(dir);
    sm_sim_destroy(sim);
    sm_deploy_free(&d);
    sm_net_free(&net);
}

/* An abandoned run leaves no files behind. */
static void test_abort_cleans(void)
{
    sm_net_t net;
    sm_chip_t chip;
    sm_deploy_t d;
    sm_sim_t *sim;
    sm_errbuf_t eb;
    char dir[] = "/tmp/sm_test_outXXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    sm_run_opts_t ro = {.duration = 10.0, .progress = 0, .out_dir = dir};
    CU_ASSERT_EQUAL_FATAL(sm_net_builtin("cuba:500", &net, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_chip_resolve("loihi", &chip, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_deploy_build(&net, &chip, 2, &d, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_sim_create(&sim, &d, &ro, &eb), 0);
    for (int k = 0; k < 10; k++)
        sm_sim_step(sim);
    sm_sim_destroy(sim);
    CU_ASSERT_EQUAL(rmdir(dir), 0); /* empty: the .part file was removed */
    sm_deploy_free(&d);
    sm_net_free(&net);
}

/* The time and energy model against a hand count: one driver neuron spikes in step 0 into 600 resting
 * neurons on three cores of the small chip (two tiles): step 0 has 601 active updates, 600 synaptic events,
 * one east-west hop and three in-tile deliveries; the other steps only idle updates. */
static void check_timing(int cycle)
{
    sm_net_t net;
    sm_chip_t chip;
    sm_deploy_t d;
    sm_sim_t *sim;
    sm_errbuf_t eb;
    const uint32_t K = 600, steps = 10;
    memset(&net, 0, sizeof net);
    strcpy(net.name, "timing");
    net.dt = 0.1;
    net.npops = 2;
    net.pops = calloc(2, sizeof *net.pops);
    for (int k = 0; k < 2; k++) {
        sm_pop_t *p = &net.pops[k];
        strcpy(p->name, k ? "tgt" : "drv");
        p->size = k ? K : 1;
        p->first = k ? 1 : 0;
        p->model = SM_MODEL_LIF;
        p->lif = (sm_lif_params_t){.tau_m = 20, .tau_e = 5, .tau_i = 10, .v_thresh = -50, .v_reset = -65,
                                   .v_rest = -65, .t_ref = 1000, .i_bias = k ? 0 : 1e5};
        p->v_init_lo = p->v_init_hi = -65;
    }
    net.n = K + 1;
    net.nprojs = 1;
    net.projs = calloc(1, sizeof *net.projs);
    net.projs[0] = (sm_proj_t){.pre = 0, .post = 1, .rule = SM_CONN_ALL, .weight = 0.01, .delay_steps = 1};
    CU_ASSERT_EQUAL_FATAL(sm_chip_resolve("small", &chip, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_deploy_build(&net, &chip, 1, &d, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(d.ncores, 3);
    sm_run_opts_t ro = {.duration = 1e9, .timing = 1, .mesh_cycle = cycle, .threads = 2};
    CU_ASSERT_EQUAL_FATAL(sm_sim_create(&sim, &d, &ro, &eb), 0);
    uint64_t spikes = 0;
    for (uint32_t k = 0; k < steps; k++)
        spikes += sm_sim_step(sim);
    CU_ASSERT_EQUAL(spikes, 1);
    sm_timing_t tm;
    CU_ASSERT_EQUAL_FATAL(sm_sim_timing(sim, &tm), 0);
    const sm_costs_t *c = &chip.costs;
    /* per core in step 0: every neuron active (all receive the spike; the driver fires); events on targets */
    double core0 = 0, idle_max = 0;
    for (uint32_t k = 0; k < 3; k++) {
        uint32_t n = d.cores[k].count, tg = k == 0 ? n - 1 : n; /* core 0 also holds the driver */
        double t0 = n * c->neuron_active_ns + tg * c->syn_op_ns, ti = n * c->neuron_idle_ns;
        if (t0 > core0)
            core0 = t0;
        if (ti > idle_max)
            idle_max = ti;
    }
    double barrier = c->barrier_ns + c->barrier_hop_ns * (2 - 1 + 2 - 1);
    /* zero-load: one east-west hop to the second tile, then delivery; cycle model (1-cycle hops, 1 ns clock):
     * the copy for tile 1 is ready there one cycle after the grant and ejects in one more */
    double drain = cycle ? 2 * c->cycle_ns : c->hop_ew_ns + c->spike_tile_ns;
    double expect_total = (core0 + drain + barrier) + (steps - 1) * (idle_max + barrier);
    CU_ASSERT_EQUAL(tm.steps, steps);
    CU_ASSERT(sm_test_relerr(tm.total_ns, expect_total) < 1e-9);
    CU_ASSERT(sm_test_relerr(tm.max_ns, core0 + drain + barrier) < 1e-9);
    CU_ASSERT_EQUAL(tm.slowest[0].step, 0);
    CU_ASSERT(sm_test_relerr(tm.energy_pj[SM_ENERGY_NEURON_ACTIVE], (K + 1) * c->neuron_active_pj) < 1e-9);
    CU_ASSERT(sm_test_relerr(tm.energy_pj[SM_ENERGY_NEURON_IDLE], (steps - 1) * (K + 1) * c->neuron_idle_pj) < 1e-9);
    CU_ASSERT(sm_test_relerr(tm.energy_pj[SM_ENERGY_SYN_OP], K * c->syn_op_pj) < 1e-9);
    CU_ASSERT(sm_test_relerr(tm.energy_pj[SM_ENERGY_SPIKE_TILE], 3 * c->spike_tile_pj) < 1e-9);
    CU_ASSERT(sm_test_relerr(tm.energy_pj[SM_ENERGY_HOP_EW], 1 * c->hop_ew_pj) < 1e-9);
    CU_ASSERT_EQUAL(tm.energy_pj[SM_ENERGY_HOP_NS], 0.0);
    CU_ASSERT_EQUAL(tm.core_bound_steps, steps);
    sm_sim_destroy(sim);
    sm_deploy_free(&d);
    sm_net_free(&net);
}

static void test_timing(void)
{
    check_timing(0);
    check_timing(1);
}

/* Greedy and bisection placements change where cores sit, never the spikes. */
static void test_same_spikes_any_placer(void)
{
    sm_net_t net;
    sm_chip_t chip;
    sm_errbuf_t eb;
    uint64_t digest[3] = {0};
    CU_ASSERT_EQUAL_FATAL(sm_net_builtin("cluster:8000", &net, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_chip_resolve("loihi:8x8", &chip, &eb), 0);
    for (int pl = 0; pl < 3; pl++) {
        sm_deploy_t d;
        sm_sim_t *sim;
        sm_deploy_opts_t o = {.placer = (sm_placer_t)pl};
        sm_run_opts_t ro = {.duration = 1e9};
        CU_ASSERT_EQUAL_FATAL(sm_deploy_build_ex(&net, &chip, 5, &o, &d, &eb), 0);
        CU_ASSERT_EQUAL_FATAL(sm_sim_create(&sim, &d, &ro, &eb), 0);
        uint64_t nsp;
        uint64_t h = sm_test_spike_digest(sim, 1000, &nsp);
        const sm_stats_t *st = sm_sim_stats(sim);
        uint64_t links = 0;
        for (uint32_t i = 0; i < sm_mesh_tiles(&d.mesh) * SM_NDIRS; i++)
            links += d.mesh.link_packets[i];
        CU_ASSERT_EQUAL(links, st->hops);
        CU_ASSERT(st->spikes > 100);
        digest[pl] = h;
        sm_sim_destroy(sim);
        sm_deploy_free(&d);
    }
    CU_ASSERT_EQUAL(digest[0], digest[1]);
    CU_ASSERT_EQUAL(digest[0], digest[2]);
    sm_net_free(&net);
}

/* A board of four small chips: the energy of chip-to-chip hops is the packets on links between chips (found
 * here from the coordinates) times the link's energy, and the other hops are charged as on-chip hops. */
static void test_board(void)
{
    sm_net_t net;
    sm_chip_t chip;
    sm_deploy_t d;
    sm_sim_t *sim;
    sm_errbuf_t eb;
    CU_ASSERT_EQUAL_FATAL(sm_net_builtin("cuba:1000", &net, &eb), 0); /* 5 cores on tiles (0,0) to (2,0) */
    CU_ASSERT_EQUAL_FATAL(sm_chip_resolve("small*3x3", &chip, &eb), 0);
    CU_ASSERT_EQUAL(chip.width, 6);
    CU_ASSERT_EQUAL(chip.height, 6);
    CU_ASSERT_EQUAL_FATAL(sm_deploy_build(&net, &chip, 1, &d, &eb), 0);
    sm_run_opts_t ro = {.duration = 1e9, .timing = 1};
    CU_ASSERT_EQUAL_FATAL(sm_sim_create(&sim, &d, &ro, &eb), 0);
    for (int k = 0; k < 300; k++)
        sm_sim_step(sim);
    sm_sim_stats(sim); /* folds the link counters */
    sm_timing_t tm;
    CU_ASSERT_EQUAL_FATAL(sm_sim_timing(sim, &tm), 0);
    uint64_t inter = 0, ew = 0, ns = 0;
    for (uint32_t t = 0; t < 36; t++)
        for (int dd = 0; dd < SM_NDIRS; dd++) {
            uint64_t v = d.mesh.link_packets[t * SM_NDIRS + (uint32_t)dd];
            uint32_t x = t % 6, y = t / 6;
            int crosses = (dd == SM_DIR_E && x % 2 == 1) || (dd == SM_DIR_W && x % 2 == 0) ||
                          (dd == SM_DIR_N && y % 2 == 1) || (dd == SM_DIR_S && y % 2 == 0);
            if (crosses)
                inter += v;
            else if (dd == SM_DIR_E || dd == SM_DIR_W)
                ew += v;
            else
                ns += v;
        }
    CU_ASSERT(inter > 0);
    CU_ASSERT(sm_test_relerr(tm.energy_pj[SM_ENERGY_HOP_CHIP], (double)inter * chip.costs.hop_chip_pj) < 1e-9);
    CU_ASSERT(sm_test_relerr(tm.energy_pj[SM_ENERGY_HOP_EW], (double)ew * chip.costs.hop_ew_pj) < 1e-9);
    CU_ASSERT(sm_test_relerr(tm.energy_pj[SM_ENERGY_HOP_NS] + 1.0, (double)ns * chip.costs.hop_ns_pj + 1.0) < 1e-9);
    sm_sim_destroy(sim);
    sm_deploy_free(&d);
    sm_net_free(&net);
}

/* Synapses are delivered as the network lists them, whatever the thread count and the delays: two sources
 * that spike in every step (probability 1) feed 600 neurons on three cores. Row 0 mixes weights, row 1 holds
 * two synapses onto one neuron, the "wide" rows carry one weight onto every neuron. After the input of the
 * first spikes arrives (step D) and decays once, ge = pe * (sum of excitatory weights) and gi = pi * (sum of
 * inhibitory weights), with the sums taken here from the lists below (plus the next step's input, with
 * one-step delays). */
static void check_delivery(uint32_t delay_steps, uint32_t threads, int split)
{
    static const uint32_t pairs[][2] = {{0, 5}, {0, 300}, {0, 599}, {1, 5}, {1, 5}, {2, 100}, {2, 101}};
    static const double w[] = {0.5, 0.25, 1.0, 2.0, -0.75, 3.0, 3.0};
    const uint32_t np = sizeof w / sizeof w[0], ntgt = 600;
    const double wide = -0.125, tau_e = 5.0, tau_i = 10.0, dt = 0.1;
    char list[512] = "", text[2048];
    for (uint32_t k = 0, at = 0; k < np; k++) /* the list rule's pairs and weights, from the arrays above */
        at += (uint32_t)snprintf(list + at, sizeof list - at, "%s[%u, %u]", k ? ", " : "", pairs[k][0], pairs[k][1]);
    strcat(list, "], \"weights_mV\": [");
    for (uint32_t k = 0; k < np; k++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%.17g", k ? ", " : "", w[k]);
    int len = snprintf(text, sizeof text,
                       "{\"dt_ms\": %g, \"populations\": ["
                       "{\"name\": \"src\", \"size\": 3, \"model\": \"poisson\", \"params\": {\"rate_hz\": 20000}},"
                       "{\"name\": \"wide\", \"size\": 2, \"model\": \"poisson\", \"params\": {\"rate_hz\": 20000}},"
                       "{\"name\": \"tgt\", \"size\": %u, \"params\": {\"v_thresh_mV\": 1e9, \"tau_e_ms\": %g,"
                       " \"tau_i_ms\": %g}}],"
                       "\"projections\": ["
                       "{\"pre\": \"src\", \"post\": \"tgt\", \"delay_ms\": %g, \"connect\": {\"rule\": \"list\","
                       " \"pairs\": [%s]}},"
                       "{\"pre\": \"wide\", \"post\": \"tgt\", \"receptor\": \"inhibitory\", \"weight_mV\": %g,"
                       " \"delay_ms\": %g, \"connect\": {\"rule\": \"all_to_all\"}}]}",
                       dt, ntgt, tau_e, tau_i, delay_steps * dt, list, wide, delay_steps * dt);
    CU_ASSERT_FATAL(len > 0 && (size_t)len < sizeof text);
    sm_net_t net;
    sm_chip_t chip;
    sm_deploy_t d;
    sm_sim_t *sim, *again;
    sm_errbuf_t eb;
    sm_run_opts_t ro = {.duration = 1e9, .progress = 0, .threads = threads, .split = split};
    CU_ASSERT_EQUAL_FATAL(sm_net_parse(text, (size_t)len, "delivery", &net, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_chip_resolve("small", &chip, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_deploy_build(&net, &chip, 1, &d, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_sim_create(&sim, &d, &ro, &eb), 0);
    sm_deploy_drop_synapses(&d); /* the simulation keeps its own copy */
    CU_ASSERT_NOT_EQUAL(sm_sim_create(&again, &d, &ro, &eb), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "dropped"));
    for (uint32_t k = 0; k <= delay_steps; k++)
        CU_ASSERT_EQUAL(sm_sim_step(sim), 5); /* every source, every step */
    double in_e[600] = {0}, pe = exp(-dt / tau_e), pi = exp(-dt / tau_i);
    for (uint32_t k = 0; k < np; k++)
        in_e[pairs[k][1]] += w[k];
    uint32_t first = 5; /* tgt's first id */
    /* with one-step delays the last step's spikes are already added into ge and gi (sm_sim_ge) */
    double next = delay_steps == 1 ? 1.0 : 0.0;
    for (uint32_t j = 0; j < ntgt; j++) {
        double ge = sm_sim_ge(sim, first + j), gi = sm_sim_gi(sim, first + j);
        CU_ASSERT(fabs(ge - (pe + next) * in_e[j]) <= 1e-12);
        CU_ASSERT(fabs(gi - (pi + next) * 2.0 * wide) <= 1e-12);
    }
    /* synaptic operations: every synapse once per source spike, in total and summed over the cores */
    const sm_stats_t *st = sm_sim_stats(sim);
    const sm_core_counters_t *cc = sm_sim_core_counters(sim);
    uint64_t per_step = np + 2 * ntgt, ops = 0;
    CU_ASSERT_EQUAL(st->synaptic_ops, (delay_steps + 1) * per_step);
    for (uint32_t c = 0; c < d.ncores; c++)
        ops += cc[c].synaptic_ops;
    CU_ASSERT_EQUAL(ops, (delay_steps + 1) * per_step);
    CU_ASSERT(d.ncores >= 3);
    sm_sim_destroy(sim);
    sm_deploy_free(&d);
    sm_net_free(&net);
}

static void test_delivery(void)
{
    for (uint32_t t = 1; t <= 3; t++) {
        check_delivery(1, t, SM_SPLIT_ADAPT); /* straight into ge and gi */
        check_delivery(3, t, SM_SPLIT_ADAPT); /* through the delay buffers */
        if (t > 1) { /* the neurons to update move between the threads after every step */
            check_delivery(1, t, SM_SPLIT_SHUFFLE);
            check_delivery(3, t, SM_SPLIT_SHUFFLE);
        }
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* --profile's slow steps (sm__prof_slow), from a histogram of made-up step times binned as runtime/sim.c
 * documents (bin floor(32 log2 ns)) with each bin's exact nanoseconds, against the exact median, count and excess
 * of the times themselves; one step far beyond the last bin (an hour) counts at its own length. */
static void test_prof_slow(void)
{
    enum { NSTEPS = 10000 };
    static uint64_t ns[NSTEPS], h[SM__PROF_BINS], sum[SM__PROF_BINS], sorted[NSTEPS];
    uint64_t state = 12345;
    for (uint32_t i = 0; i < NSTEPS; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t r = (uint32_t)(state >> 33) % 10000u;
        if (i == 5007)
            ns[i] = 3600000000000ull; /* one of the 100 slow steps: an hour, past the last bin (2^40 ns) */
        else if (i % 100 == 7) /* the other 99: 0.25 to 1 ms */
            ns[i] = 250000u + (uint64_t)r * 75u;
        else if (i % 50 == 3) /* 100 a little slow: 100 to 200 us, under 4x the median */
            ns[i] = 100000u + (uint64_t)r * 10u;
        else /* the rest: 55 to 65 us */
            ns[i] = 55000u + r;
    }
    for (uint32_t i = 0; i < NSTEPS; i++) {
        double b = floor(log2((double)ns[i]) * SM__PROF_PER_OCTAVE);
        uint32_t bin = b >= SM__PROF_BINS - 1 ? SM__PROF_BINS - 1 : (uint32_t)b;
        h[bin]++;
        sum[bin] += ns[i];
    }
    memcpy(sorted, ns, sizeof sorted);
    qsort(sorted, NSTEPS, sizeof *sorted, cmp_u64);
    double med = (double)sorted[NSTEPS / 2 - 1] * 1e-9, slow = 0, extra = 0;
    for (uint32_t i = 0; i < NSTEPS; i++)
        if ((double)ns[i] * 1e-9 >= SM_PROFILE_SLOW_FACTOR * med)
            slow++, extra += (double)ns[i] * 1e-9 - med;
    CU_ASSERT_EQUAL(slow, 100);
    double out[3];
    sm__prof_slow(h, sum, NSTEPS, out);
    CU_ASSERT(fabs(out[0] - med) <= 0.011 * med); /* the median bin's middle */
    CU_ASSERT_EQUAL(out[1], slow);
    /* exact sums, less 100 medians known to within 1.1% */
    CU_ASSERT(fabs(out[2] - extra) <= 100 * 0.011 * med + 1e-9);
    /* without the hour: the other 99 slow steps (a few ms in all, where 99 medians are 10%) */
    h[SM__PROF_BINS - 1]--;
    sum[SM__PROF_BINS - 1] -= ns[5007];
    extra -= (double)ns[5007] * 1e-9 - med;
    sm__prof_slow(h, sum, NSTEPS - 1, out);
    CU_ASSERT_EQUAL(out[1], 99);
    CU_ASSERT(fabs(out[2] - extra) <= 99 * 0.011 * med + 1e-12);
    /* no slow step: none counted; no step at all: nothing */
    memset(h, 0, sizeof h);
    memset(sum, 0, sizeof sum);
    h[(uint32_t)floor(log2(60000.0) * SM__PROF_PER_OCTAVE)] = 10;
    h[(uint32_t)floor(log2(200000.0) * SM__PROF_PER_OCTAVE)] = 3;
    sm__prof_slow(h, sum, 13, out);
    CU_ASSERT(out[1] == 0 && out[2] == 0);
    sm__prof_slow(h, sum, 0, out);
    CU_ASSERT(out[0] == 0 && out[1] == 0 && out[2] == 0);
}

/* The balancer's rules, fed made-up windows (sm__balance_window) on 6400 LIF neurons over cores of 50 on 2 and 3
 * workers: a border moves only for an imbalance of 15% or more seen twice in a row, toward the slower worker's
 * neighbour, within its limits; it goes back exactly to where it started once the imbalance is gone; a moment of
 * disturbance or a 10% imbalance moves nothing. */
static void feed(sm_sim_t *s, const double *cost, int windows)
{
    double route[3] = {2000, 2000, 2000};
    for (int k = 0; k < windows; k++) {
        sm__balance_window(s, cost, route, 100);
        for (uint32_t u = 0; u + 1 < s->nworkers; u++) { /* borders in order and within their limits */
            CU_ASSERT(s->workers[u].qhi == s->workers[u + 1].qlo);
            CU_ASSERT(s->workers[u].qhi >= s->workers[u + 1].qmin && s->workers[u].qhi <= s->workers[u].qmax);
        }
    }
}

static void test_balancer_rules(void)
{
    static const char net_text[] =
        "{\"dt_ms\": 0.1, \"populations\": [{\"name\": \"a\", \"size\": 6400, \"v_init_mV\": [-60, -50]}],"
        " \"projections\": [{\"pre\": \"a\", \"post\": \"a\", \"connect\": {\"rule\": \"bernoulli\", \"p\": 0.01},"
        " \"weight_mV\": 0.5}]}";
    static const char chip_text[] =
        "{\"name\": \"fifty\", \"mesh\": {\"width\": 8, \"height\": 8}, \"cores_per_tile\": 2,"
        " \"core\": {\"max_neurons\": 50, \"synapse_memory_bytes\": 131072, \"synapse_bytes\": 4,"
        " \"max_fan_in\": 4096, \"max_fan_out\": 8192, \"max_delay_steps\": 62}, \"router\": {\"table_entries\": 4096}}";
    for (uint32_t W = 2; W <= 3; W++) {
        sm_net_t net;
        sm_chip_t chip;
        sm_deploy_t d;
        sm_sim_t *s;
        sm_errbuf_t eb;
        sm_run_opts_t ro = {.duration = 1e9, .progress = 0, .threads = W, .split = SM_SPLIT_FIXED};
        CU_ASSERT_EQUAL_FATAL(sm_net_parse(net_text, sizeof net_text - 1, "balance", &net, &eb), 0);
        CU_ASSERT_EQUAL_FATAL(sm_chip_parse(chip_text, sizeof chip_text - 1, "fifty", &chip, &eb), 0);
        CU_ASSERT_EQUAL_FATAL(sm_deploy_build(&net, &chip, 1, &d, &eb), 0);
        CU_ASSERT_EQUAL_FATAL(sm_sim_create(&s, &d, &ro, &eb), 0);
        uint32_t home[3], first = sm__worker_neurons(s, 0), second = sm__worker_neurons(s, 1), third = W == 3 ? sm__worker_neurons(s, 2) : 0;
        for (uint32_t u = 0; u < W; u++)
            home[u] = s->workers[u].qhi;
        double calm[3] = {0.3, 0.3, 0.3}, slow1[3] = {0.3, 0.6, 0.3}, tenth[3] = {0.3, 0.33, 0.3};
        feed(s, tenth, 20); /* 10% slower: under the threshold */
        CU_ASSERT_EQUAL(sm__worker_neurons(s, 0), first);
        CU_ASSERT_EQUAL(sm__worker_neurons(s, 1), second);
        for (int k = 0; k < 10; k++) { /* one window 3x slower, then calm: never twice in a row */
            double spike[3] = {0.3, 0.9, 0.3};
            feed(s, spike, 1);
            feed(s, calm, 1);
        }
        CU_ASSERT_EQUAL(sm__worker_neurons(s, 0), first);
        feed(s, slow1, 12); /* worker 1 twice as slow: its neighbours take cores from it */
        CU_ASSERT(sm__worker_neurons(s, 0) > first);
        CU_ASSERT(sm__worker_neurons(s, 1) + 300 < second);
        if (W == 3)
            CU_ASSERT(sm__worker_neurons(s, 2) > third);
        /* the step times are then within 15%: work per neuron 0.3 and 0.6 ns, route 2 us */
        double t0 = 0.3 * sm__worker_neurons(s, 0) + 2000, t1 = 0.6 * sm__worker_neurons(s, 1) + 2000;
        CU_ASSERT(fabs(t0 - t1) < 0.15 * (t0 > t1 ? t0 : t1));
        feed(s, calm, 40); /* the disturbance is over: back where they started */
        for (uint32_t u = 0; u < W; u++)
            CU_ASSERT_EQUAL(s->workers[u].qhi, home[u]);
        for (int k = 0; k < 20; k++) /* and the simulation still steps */
            sm_sim_step(s);
        sm_sim_destroy(s);
        sm_deploy_free(&d);
        sm_net_free(&net);
    }
}

/* An unknown sm_run_opts_t.split is refused, with a message. */
static void test_bad_split(void)
{
    sm_net_t net;
    sm_chip_t chip;
    sm_deploy_t d;
    sm_sim_t *sim = NULL;
    sm_errbuf_t eb;
    sm_run_opts_t ro = {.duration = 10, .progress = 0, .threads = 2, .split = 7};
    CU_ASSERT_EQUAL_FATAL(sm_net_builtin("cuba:2000", &net, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_chip_resolve("loihi", &chip, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_deploy_build(&net, &chip, 1, &d, &eb), 0);
    CU_ASSERT_NOT_EQUAL(sm_sim_create(&sim, &d, &ro, &eb), 0);
    CU_ASSERT_PTR_NULL(sim);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "split 7"));
    sm_deploy_free(&d);
    sm_net_free(&net);
}

int sm_test_sim_register(void)
{
    CU_pSuite s = CU_add_suite("sim", NULL, NULL);
    if (!s || !CU_add_test(s, "identical spikes on any chip", test_same_spikes_any_chip) ||
        !CU_add_test(s, "identical spikes with any placer", test_same_spikes_any_placer) ||
        !CU_add_test(s, "counters add up", test_counters) ||
        !CU_add_test(s, "synapses delivered as listed, any thread count and delay", test_delivery) ||
        !CU_add_test(s, "an unknown split is refused", test_bad_split) ||
        !CU_add_test(s, "the balancer's rules", test_balancer_rules) ||
        !CU_add_test(s, "--profile's slow steps", test_prof_slow) ||
        !CU_add_test(s, "abandoned outputs are removed", test_abort_cleans) ||
        !CU_add_test(s, "time and energy model against a hand count", test_timing) ||
        !CU_add_test(s, "a board of chips: chip-to-chip hops", test_board))
        return -1;
    return 0;
}
