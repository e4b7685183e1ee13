/* tests/test_compress.c: routing-table compression by ordered covering: every key in use keeps its route (random
 * overlapping tables, a deployed network's trees link by link), the compression ratio, and tables that cannot fit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spikemesh/spikemesh.h"
#include "tests/unit.h"

#define NO_ROUTE UINT32_MAX

/* First match by an in-order scan, NO_ROUTE when no entry matches (default routing). */
static uint32_t scan_route(const sm_route_entry_t *e, uint32_t n, uint32_t key)
{
    for (uint32_t i = 0; i < n; i++)
        if ((key & e[i].mask) == e[i].key)
            return e[i].route;
    return NO_ROUTE;
}

static uint32_t lcg(uint32_t *x)
{
    *x = *x * 1103515245u + 12345u;
    return *x >> 8;
}

/* Fills t with n random entries over a 12-bit key space (key bits 12.. fixed at 0x5a), with masks that care about
 * 3 to 12 random bits, so entries overlap in every way; routes come from a few words. */
static void random_table(sm_table_t *t, uint32_t n, uint32_t nroutes, uint32_t *x)
{
    static const uint32_t words[] = {0x10u, 0x21u, 0x32u, 0x4u, 0x18u, 0x8u, 0x11u, 0x100u};
    memset(t, 0, sizeof *t);
    t->entries = malloc((size_t)n * sizeof *t->entries);
    t->n = n;
    t->cap = n;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t care = 0xfffff000u, nb = 3 + lcg(x) % 10;
        while (nb > 0) {
            uint32_t b = 1u << (lcg(x) % 12);
            if (!(care & b)) {
                care |= b;
                nb--;
            }
        }
        t->entries[i].mask = care;
        t->entries[i].key = ((0x5au << 12) | (lcg(x) & 0xfffu)) & care;
        t->entries[i].route = words[lcg(x) % nroutes];
    }
}

/* Random tables with overlapping masks and random keys in use: after compression (fully, and to a target), every
 * key in use finds the same route as before by an in-order scan, including "no entry"; indexed lookups agree. */
static void test_random_tables(void)
{
    uint32_t x = 12345, trials = 0, before = 0, after = 0;
    for (uint32_t trial = 0; trial < 60; trial++) {
        sm_table_t t;
        sm_errbuf_t eb = {0};
        uint32_t n = 20 + lcg(&x) % 300, nroutes = 2 + trial % 7, nkeys = 0;
        random_table(&t, n, nroutes, &x);
        /* Keys in use: a random fraction of the 4096 keys of the space, given unsorted and with repeats; some
         * are outside the space (no entry matches them). */
        uint32_t *keys = malloc(6000 * sizeof *keys), *want = malloc(6000 * sizeof *want);
        uint32_t frac = 1 + lcg(&x) % 90;
        for (uint32_t k = 0; k < 4096; k++)
            if (lcg(&x) % 100 < frac)
                keys[nkeys++] = (0x5au << 12) | k;
        for (uint32_t k = 0; k < 200; k++)
            keys[nkeys++] = lcg(&x);
        for (uint32_t k = 0; k + 1 < nkeys; k++) { /* shuffle, then repeat a few */
            uint32_t j = k + lcg(&x) % (nkeys - k), s = keys[k];
            keys[k] = keys[j];
            keys[j] = s;
        }
        for (uint32_t k = 0; k < 50; k++)
            keys[nkeys++] = keys[k];
        for (uint32_t k = 0; k < nkeys; k++)
            want[k] = scan_route(t.entries, t.n, keys[k]);
        uint32_t target = trial % 3 == 0 ? n / 2 : 0;
        int rc = sm_table_compress(&t, keys, nkeys, target, &eb);
        CU_ASSERT(rc == 0 || (rc == SM_ENOFIT && target > 0 && t.n > target));
        if (rc == 0 && target > 0)
            CU_ASSERT(t.n <= target);
        CU_ASSERT(t.n <= n);
        CU_ASSERT_EQUAL(t.indexed, 0);
        uint32_t bad = 0, badidx = 0;
        for (uint32_t i = 0; i < t.n; i++)
            bad += (t.entries[i].key & ~t.entries[i].mask) != 0;
        for (uint32_t k = 0; k < nkeys; k++)
            bad += scan_route(t.entries, t.n, keys[k]) != want[k];
        CU_ASSERT_EQUAL(bad, 0);
        CU_ASSERT_EQUAL_FATAL(sm_table_index(&t), 0);
        for (uint32_t k = 0; k < nkeys; k++) {
            uint32_t r;
            if (!sm_table_lookup(&t, keys[k], &r))
                r = NO_ROUTE;
            badidx += r != want[k];
        }
        CU_ASSERT_EQUAL(badidx, 0);
        if (target == 0) {
            trials++;
            before += n;
            after += t.n;
        }
        free(keys);
        free(want);
        free(t.entries);
        free(t.masks);
        free(t.mstart);
        free(t.ikeys);
    }
    CU_ASSERT(trials > 0 && after < before);
}

/* A key in use with no entry at this router passes straight through (default routing): a cover must not capture
 * it. Entries 0 and 3 (one route) cover keys 0..3; with key 1 in use and entry-less they stay apart, without it
 * they merge. */
static void test_default_routing_kept(void)
{
    sm_route_entry_t e[2] = {{0x000u, ~0u, SM_ROUTE_CORE(0)}, {0x003u, ~0u, SM_ROUTE_CORE(0)}};
    sm_table_t t = {0};
    uint32_t keys[3] = {0x000u, 0x003u, 0x001u};
    t.entries = malloc(sizeof e);
    memcpy(t.entries, e, sizeof e);
    t.n = t.cap = 2;
    CU_ASSERT_EQUAL(sm_table_compress(&t, keys, 3, 0, NULL), 0);
    CU_ASSERT_EQUAL(t.n, 2);
    CU_ASSERT_EQUAL(scan_route(t.entries, t.n, 0x001u), NO_ROUTE);
    CU_ASSERT_EQUAL(sm_table_compress(&t, keys, 2, 0, NULL), 0);
    CU_ASSERT_EQUAL(t.n, 1);
    CU_ASSERT_EQUAL(scan_route(t.entries, t.n, 0x000u), SM_ROUTE_CORE(0));
    CU_ASSERT_EQUAL(scan_route(t.entries, t.n, 0x003u), SM_ROUTE_CORE(0));
    /* Order matters: an earlier entry of another route shields a key, so the cover goes after it. */
    sm_route_entry_t o[3] = {{0x001u, ~0u, SM_ROUTE_CORE(1)}, {0x000u, ~3u, SM_ROUTE_CORE(0)},
                             {0x004u, ~3u, SM_ROUTE_CORE(0)}};
    uint32_t okeys[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    sm_route_entry_t *grown = realloc(t.entries, sizeof o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(grown);
    t.entries = grown;
    memcpy(t.entries, o, sizeof o);
    t.n = t.cap = 3;
    CU_ASSERT_EQUAL(sm_table_compress(&t, okeys, 8, 0, NULL), 0);
    CU_ASSERT_EQUAL(t.n, 2);
    for (uint32_t k = 0; k < 8; k++)
        CU_ASSERT_EQUAL(scan_route(t.entries, t.n, k), scan_route(o, 3, k));
    free(t.entries);
}

/* Random multicast trees on a 7x5 mesh (160 key ranges of 16 keys from random tiles to 1..8 random cores; every
 * fifth range is not in use): after compressing every table, each key in use injected at its source reaches the
 * same cores over the same links as before. */
static void test_random_trees(void)
{
    enum { W = 7, H = 5, CPT = 3, NR = 160 };
    sm_mesh_t m1, m2;
    uint32_t x = 777, src[NR], dst[8], *keys = malloc(NR * 16 * sizeof *keys), nkeys = 0;
    CU_ASSERT_EQUAL_FATAL(sm_mesh_init(&m1, W, H, CPT, 4096), 0);
    CU_ASSERT_EQUAL_FATAL(sm_mesh_init(&m2, W, H, CPT, 4096), 0);
    for (uint32_t q = 0; q < NR; q++) {
        uint32_t nd = 1 + lcg(&x) % 8;
        src[q] = lcg(&x) % (W * H);
        for (uint32_t k = 0; k < nd; k++)
            dst[k] = lcg(&x) % (W * H * CPT);
        CU_ASSERT_EQUAL_FATAL(sm_mesh_add_tree(&m1, src[q], q << 4, ~0xfu, dst, nd, NULL, NULL, NULL), 0);
        CU_ASSERT_EQUAL_FATAL(sm_mesh_add_tree(&m2, src[q], q << 4, ~0xfu, dst, nd, NULL, NULL, NULL), 0);
        if (q % 5 != 4)
            for (uint32_t i = 0; i < 16; i++)
                keys[nkeys++] = q << 4 | i;
    }
    uint64_t before = 0, after = 0;
    CU_ASSERT_EQUAL(sm_mesh_compress(&m2, keys, nkeys, 0, &before, &after, NULL), 0);
    CU_ASSERT(after < before);
    uint32_t g1[W * H * CPT], g2[W * H * CPT], bad = 0;
    for (uint32_t k = 0; k < nkeys; k++) {
        uint32_t n1 = 0, n2 = 0, q = keys[k] >> 4;
        uint64_t h1 = 0, h2 = 0;
        sm_mesh_clear_counters(&m1);
        sm_mesh_clear_counters(&m2);
        CU_ASSERT_EQUAL(sm_mesh_route(&m1, src[q], keys[k], 1, g1, &n1, &h1, NULL), 0);
        if (sm_mesh_route(&m2, src[q], keys[k], 1, g2, &n2, &h2, NULL) != 0 || n1 != n2 || h1 != h2 ||
            memcmp(g1, g2, n1 * sizeof *g1) != 0 ||
            memcmp(m1.link_packets, m2.link_packets, W * H * SM_NDIRS * sizeof *m1.link_packets) != 0)
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(keys);
    sm_mesh_free(&m1);
    sm_mesh_free(&m2);
}

/* The keys in use of a deployment: every key of every piece with destinations. */
static uint32_t *keys_in_use(const sm_deploy_t *d, size_t *n)
{
    size_t k = 0;
    for (uint32_t q = 0; q < d->npieces; q++)
        if (d->pieces[q].ndest > 0)
            k += d->pieces[q].count;
    uint32_t *keys = malloc((k ? k : 1) * sizeof *keys);
    k = 0;
    for (uint32_t q = 0; q < d->npieces; q++)
        if (d->pieces[q].ndest > 0)
            for (uint32_t i = 0; i < d->pieces[q].count; i++)
                keys[k++] = d->pieces[q].key + i;
    *n = k;
    return keys;
}

/* Deploys netspec on chipspec twice (the same tables), compresses the second (to target, 0: fully), and routes
 * every key in use from its piece's source tile through both: the same cores, and one packet crosses the same
 * links and routers. Returns the compression ratio (entries before / after). */
static double check_deployment(const char *netspec, const char *chipspec, uint32_t target)
{
    sm_net_t net;
    sm_chip_t chip;
    sm_deploy_t d1, d2;
    sm_errbuf_t eb = {0};
    uint64_t before = 0, after = 0;
    CU_ASSERT_EQUAL_FATAL(sm_net_builtin(netspec, &net, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_chip_resolve(chipspec, &chip, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_deploy_build(&net, &chip, 11, &d1, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_deploy_build(&net, &chip, 11, &d2, &eb), 0);
    size_t nkeys;
    uint32_t *keys = keys_in_use(&d2, &nkeys);
    int rc = sm_mesh_compress(&d2.mesh, keys, nkeys, target, &before, &after, &eb);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(before, d1.table_entries);
    uint32_t tiles = sm_mesh_tiles(&d1.mesh), ncores = tiles * chip.cores_per_tile;
    uint64_t sum = 0;
    for (uint32_t t = 0; t < tiles; t++) {
        sum += d2.mesh.tables[t].n;
        if (target > 0)
            CU_ASSERT(d2.mesh.tables[t].n <= (d1.mesh.tables[t].n > target ? target : d1.mesh.tables[t].n));
    }
    CU_ASSERT_EQUAL(sum, after);
    uint32_t *g1 = malloc(ncores * sizeof *g1), *g2 = malloc(ncores * sizeof *g2);
    uint32_t bad = 0, checked = 0;
    for (uint32_t q = 0; q < d1.npieces; q++) {
        const sm_piece_t *pc = &d1.pieces[q];
        uint32_t src = d1.cores[pc->core].tile;
        if (pc->ndest == 0)
            continue;
        for (uint32_t i = 0; i < pc->count; i++) {
            uint32_t n1 = 0, n2 = 0;
            uint64_t h1 = 0, h2 = 0;
            sm_mesh_clear_counters(&d1.mesh);
            sm_mesh_clear_counters(&d2.mesh);
            int r1 = sm_mesh_route(&d1.mesh, src, pc->key + i, 1, g1, &n1, &h1, NULL);
            int r2 = sm_mesh_route(&d2.mesh, src, pc->key + i, 1, g2, &n2, &h2, NULL);
            CU_ASSERT_EQUAL(r1, 0);
            checked++;
            if (r2 != 0 || n1 != n2 || h1 != h2 || memcmp(g1, g2, n1 * sizeof *g1) != 0 ||
                memcmp(d1.mesh.link_packets, d2.mesh.link_packets, (size_t)tiles * SM_NDIRS * sizeof(uint64_t)) ||
                memcmp(d1.mesh.router_packets, d2.mesh.router_packets, (size_t)tiles * sizeof(uint64_t)) ||
                memcmp(d1.mesh.core_packets, d2.mesh.core_packets, (size_t)ncores * sizeof(uint64_t)))
                bad++;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(checked, nkeys);
    double ratio = after ? (double)before / (double)after : 0.0;
    printf("\n    %s on %s, target %u: %llu -> %llu table entries, compression ratio %.2f, %u keys checked ",
           netspec, chipspec, target, (unsigned long long)before, (unsigned long long)after, ratio, checked);
    free(g1);
    free(g2);
    free(keys);
    sm_deploy_free(&d1);
    sm_deploy_free(&d2);
    sm_net_free(&net);
    return ratio;
}

/* Deployed networks: fully compressed, and compressed only down to a target, every key still reaches the same
 * cores over the same links; trees of neighbouring pieces share routes, so the ratio is above 1. */
static void test_deployment(void)
{
    CU_ASSERT(check_deployment("cuba:2000", "loihi:8x8", 0) > 1.0);
    CU_ASSERT(check_deployment("cuba:3000", "small:12x12", 0) > 4.0); /* 200 fan-in-bound cores */
    CU_ASSERT(check_deployment("cuba:3000", "small:12x12", 64) > 1.0);
}

/* Four entries, four routes, every key in use: nothing merges, so a target of 2 gives SM_ENOFIT, named by router
 * at the mesh level; a table at or below its target is left alone. */
static void test_no_fit(void)
{
    sm_errbuf_t eb = {0};
    sm_mesh_t m;
    CU_ASSERT_EQUAL_FATAL(sm_mesh_init(&m, 2, 1, 2, 8), 0);
    sm_table_t *t = &m.tables[1];
    t->entries = malloc(4 * sizeof *t->entries);
    for (uint32_t i = 0; i < 4; i++) {
        t->entries[i].key = i << 4;
        t->entries[i].mask = ~0xfu;
        t->entries[i].route = SM_ROUTE_LINK(i);
    }
    t->n = 4;
    uint32_t keys[4] = {0x00u, 0x10u, 0x20u, 0x3fu};
    CU_ASSERT_EQUAL(sm_table_compress(t, keys, 4, 2, &eb), SM_ENOFIT);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "4 entries do not compress below 2"));
    CU_ASSERT_EQUAL(t->n, 4);
    uint64_t before = 0, after = 0;
    memset(&eb, 0, sizeof eb);
    CU_ASSERT_EQUAL(sm_mesh_compress(&m, keys, 4, 2, &before, &after, &eb), SM_ENOFIT);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "router (1,0): 4 entries do not compress below 2, its capacity"));
    CU_ASSERT_EQUAL(before, 4);
    CU_ASSERT_EQUAL(after, 4);
    /* With a target it meets, or minimizing within the table's capacity of 8, it is fine. */
    CU_ASSERT_EQUAL(sm_mesh_compress(&m, keys, 4, 4, &before, &after, &eb), 0);
    CU_ASSERT_EQUAL(sm_mesh_compress(&m, keys, 4, 0, &before, &after, &eb), 0);
    CU_ASSERT_EQUAL(after, 4);
    /* Two routes alike: they merge into one cover and the table fits 3. */
    t->entries[3].route = SM_ROUTE_LINK(0);
    CU_ASSERT_EQUAL(sm_mesh_compress(&m, keys, 4, 3, &before, &after, &eb), 0);
    CU_ASSERT_EQUAL(after, 3);
    for (uint32_t k = 0; k < 4; k++)
        CU_ASSERT_EQUAL(scan_route(t->entries, t->n, keys[k]), SM_ROUTE_LINK(k == 3 ? 0 : k));
    sm_mesh_free(&m);
}

int sm_test_compress_register(void)
{
    CU_pSuite s = CU_add_suite("compress", NULL, NULL);
    if (!s || !CU_add_test(s, "random tables keep every key's route", test_random_tables) ||
        !CU_add_test(s, "default routing and order are kept", test_default_routing_kept) ||
        !CU_add_test(s, "random multicast trees route alike, compressed", test_random_trees) ||
        !CU_add_test(s, "a deployment routes alike, compressed", test_deployment) ||
        !CU_add_test(s, "a table that cannot fit", test_no_fit))
        return -1;
    return 0;
}
