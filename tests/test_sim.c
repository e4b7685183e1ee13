/* tests/test_sim.c: runs through the loop: identical spikes on different chips and placements, traffic and
 * operation counters that add up, and output files moved into place only when complete. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    uint64_t h = 1469598103934665603ull;
    *nspikes = 0;
    if (sm_net_builtin(netspec, &net, &eb) || sm_chip_resolve(chipspec, &chip, &eb) ||
        sm_deploy_build(&net, &chip, seed, &d, &eb)) {
        CU_FAIL("setup");
        return 0;
    }
    CU_ASSERT_EQUAL_FATAL(sm_sim_create(&sim, &d, &ro, &eb), 0);
    for (uint64_t k = 0; k < steps; k++) {
        uint32_t n;
        sm_sim_step(sim);
        const uint32_t *ids = sm_sim_last_spikes(sim, &n);
        for (uint32_t i = 0; i < n; i++) {
            uint64_t w[2] = {k, ids[i]};
            const unsigned char *p = (const unsigned char *)w;
            for (size_t b = 0; b < sizeof w; b++)
                h = (h ^ p[b]) * 1099511628211ull;
        }
        *nspikes += n;
    }
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

int sm_test_sim_register(void)
{
    CU_pSuite s = CU_add_suite("sim", NULL, NULL);
    if (!s || !CU_add_test(s, "identical spikes on any chip", test_same_spikes_any_chip) ||
        !CU_add_test(s, "counters add up", test_counters) ||
        !CU_add_test(s, "abandoned outputs are removed", test_abort_cleans))
        return -1;
    return 0;
}
