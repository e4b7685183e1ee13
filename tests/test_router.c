/* tests/test_router.c: XY paths, multicast replication with exact hop counts, default routing, table
 * capacity, and every routing key of a deployment reaching exactly its destination cores. */
#include <stdlib.h>
#include <string.h>

#include "spikemesh/spikemesh.h"
#include "tests/unit.h"

static uint32_t tile_of(const sm_mesh_t *m, uint32_t x, uint32_t y) { return y * m->width + x; }

/* On a 5x4 mesh: every path has |dx| + |dy| hops and goes along x first, then along y. */
static void test_xy_paths(void)
{
    sm_mesh_t m;
    uint32_t path[16];
    CU_ASSERT_EQUAL_FATAL(sm_mesh_init(&m, 5, 4, 2, 16), 0);
    for (uint32_t s = 0; s < 20; s++)
        for (uint32_t d = 0; d < 20; d++) {
            int sx = (int)(s % 5), sy = (int)(s / 5), dx = (int)(d % 5), dy = (int)(d / 5);
            uint32_t h = sm_mesh_xy_path(&m, s, d, path);
            CU_ASSERT_EQUAL(h, (uint32_t)(abs(dx - sx) + abs(dy - sy)));
            uint32_t xh = (uint32_t)abs(dx - sx);
            for (uint32_t k = 0; k < h; k++) {
                int px = (int)(path[k] % 5), py = (int)(path[k] / 5);
                if (k < xh) { /* x leg: on the source row */
                    CU_ASSERT_EQUAL(py, sy);
                } else { /* y leg: on the destination column */
                    CU_ASSERT_EQUAL(px, dx);
                }
            }
            if (h > 0)
                CU_ASSERT_EQUAL(path[h - 1], d);
        }
    /* small preset shape: (0,0) -> (1,1) goes through (1,0). */
    sm_mesh_t sm;
    CU_ASSERT_EQUAL_FATAL(sm_mesh_init(&sm, 2, 2, 2, 16), 0);
    CU_ASSERT_EQUAL(sm_mesh_xy_path(&sm, 0, 3, path), 2);
    CU_ASSERT_EQUAL(path[0], 1);
    CU_ASSERT_EQUAL(path[1], 3);
    sm_mesh_free(&sm);
    sm_mesh_free(&m);
}

/* Counts the links of the union of the XY paths from src to each destination tile: the tree's size. */
static uint32_t tree_links(const sm_mesh_t *m, uint32_t src, const uint32_t *dst_tiles, uint32_t nd)
{
    uint32_t tiles = sm_mesh_tiles(m), path[64], count = 0;
    uint8_t *used = calloc((size_t)tiles * tiles, 1);
    for (uint32_t k = 0; k < nd; k++) {
        uint32_t h = sm_mesh_xy_path(m, src, dst_tiles[k], path), prev = src;
        for (uint32_t i = 0; i < h; i++) {
            if (!used[(size_t)prev * tiles + path[i]]) {
                used[(size_t)prev * tiles + path[i]] = 1;
                count++;
            }
            prev = path[i];
        }
    }
    free(used);
    return count;
}

static void test_multicast(void)
{
    sm_mesh_t m;
    CU_ASSERT_EQUAL_FATAL(sm_mesh_init(&m, 6, 5, 3, 64), 0);
    uint32_t src = tile_of(&m, 2, 1);
    /* destination cores: (5,4) slot 2, (0,0) slot 0, (2,4) slot 1, (2,1) slot 0 (local), (5,1) slot 1 */
    uint32_t dtiles[] = {tile_of(&m, 5, 4), tile_of(&m, 0, 0), tile_of(&m, 2, 4), tile_of(&m, 2, 1), tile_of(&m, 5, 1)};
    uint32_t slots[] = {2, 0, 1, 0, 1}, dst[5];
    for (int k = 0; k < 5; k++)
        dst[k] = dtiles[k] * 3 + slots[k];
    uint32_t ntree = 0;
    uint64_t tree[30];
    CU_ASSERT_EQUAL_FATAL(sm_mesh_add_tree(&m, src, 0x400, 0xfffffc00u, dst, 5, tree, &ntree, NULL), 0);
    uint32_t got[90], ng = 0;
    uint64_t hops = 0;
    CU_ASSERT_EQUAL_FATAL(sm_mesh_route(&m, src, 0x400 + 17, 1, got, &ng, &hops, NULL), 0);
    CU_ASSERT_EQUAL(ng, 5);
    for (int k = 0; k < 5; k++) {
        int found = 0;
        for (uint32_t i = 0; i < ng; i++)
            found += got[i] == dst[k];
        CU_ASSERT_EQUAL(found, 1);
    }
    uint32_t expect = tree_links(&m, src, dtiles, 5);
    CU_ASSERT_EQUAL(hops, expect);
    CU_ASSERT_EQUAL(ntree, expect + 1);
    /* One packet per link of the tree: link counters sum to the hop count, each is 0 or 1. */
    uint64_t sum = 0;
    for (uint32_t i = 0; i < sm_mesh_tiles(&m) * SM_NDIRS; i++) {
        CU_ASSERT(m.link_packets[i] <= 1);
        sum += m.link_packets[i];
    }
    CU_ASSERT_EQUAL(sum, expect);
    /* Counting many packets at once multiplies every counter. */
    sm_mesh_clear_counters(&m);
    CU_ASSERT_EQUAL(sm_mesh_route(&m, src, 0x400, 1000, NULL, &ng, &hops, NULL), 0);
    sum = 0;
    for (uint32_t i = 0; i < sm_mesh_tiles(&m) * SM_NDIRS; i++)
        sum += m.link_packets[i];
    CU_ASSERT_EQUAL(sum, 1000u * expect);
    CU_ASSERT_EQUAL(m.core_packets[dst[0]], 1000);
    /* Counting along the recorded tree gives the same counters as routing through the tables. */
    size_t nl = sm_mesh_tiles(&m) * SM_NDIRS, nr = sm_mesh_tiles(&m), nc = nr * 3;
    uint64_t *links = malloc(nl * sizeof *links), *routers = malloc(nr * sizeof *routers);
    uint64_t *cores = malloc(nc * sizeof *cores);
    memcpy(links, m.link_packets, nl * sizeof *links);
    memcpy(routers, m.router_packets, nr * sizeof *routers);
    memcpy(cores, m.core_packets, nc * sizeof *cores);
    sm_mesh_clear_counters(&m);
    sm_mesh_count_tree(&m, tree, ntree, 1000);
    CU_ASSERT_EQUAL(memcmp(links, m.link_packets, nl * sizeof *links), 0);
    CU_ASSERT_EQUAL(memcmp(routers, m.router_packets, nr * sizeof *routers), 0);
    CU_ASSERT_EQUAL(memcmp(cores, m.core_packets, nc * sizeof *cores), 0);
    free(links);
    free(routers);
    free(cores);
    /* A key outside the range is not routed from the source. */
    CU_ASSERT_EQUAL(sm_mesh_route(&m, src, 0x800, 1, NULL, &ng, &hops, NULL), SM_EROUTE);
    sm_mesh_free(&m);
}

/* Routers the tree passes straight through need no entry; the packet still arrives. */
static void test_default_routing(void)
{
    sm_mesh_t m;
    CU_ASSERT_EQUAL_FATAL(sm_mesh_init(&m, 8, 1, 1, 4), 0);
    uint32_t dst = 7;
    CU_ASSERT_EQUAL_FATAL(sm_mesh_add_tree(&m, 0, 0, 0xffffff00u, &dst, 1, NULL, NULL, NULL), 0);
    uint32_t entries = 0;
    for (uint32_t t = 0; t < 8; t++)
        entries += m.tables[t].n;
    CU_ASSERT_EQUAL(entries, 2); /* source and destination only */
    uint32_t got[8], ng;
    uint64_t hops;
    CU_ASSERT_EQUAL(sm_mesh_route(&m, 0, 5, 1, got, &ng, &hops, NULL), 0);
    CU_ASSERT_EQUAL(ng, 1);
    CU_ASSERT_EQUAL(got[0], 7);
    CU_ASSERT_EQUAL(hops, 7);
    for (uint32_t t = 0; t < 8; t++)
        CU_ASSERT_EQUAL(m.router_packets[t], 1);
    sm_mesh_free(&m);
}

static void test_table_capacity(void)
{
    sm_mesh_t m;
    sm_errbuf_t eb = {0};
    CU_ASSERT_EQUAL_FATAL(sm_mesh_init(&m, 3, 3, 1, 1), 0);
    uint32_t dst = 4; /* centre tile (1,1) */
    CU_ASSERT_EQUAL(sm_mesh_add_tree(&m, 4, 0x000, 0xffffff00u, &dst, 1, NULL, NULL, &eb), 0);
    CU_ASSERT_EQUAL(sm_mesh_add_tree(&m, 4, 0x100, 0xffffff00u, &dst, 1, NULL, NULL, &eb), SM_ENOFIT);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "router (1,1)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "1 routing table"));
    sm_mesh_free(&m);
}

/* A deployment of CUBA on the small preset (resized): every key reaches exactly the cores that hold a
 * postsynaptic neuron of its piece, found here from the synapses and the core ranges directly. */
static void check_keys_reach(const char *netspec, const char *chipspec)
{
    sm_net_t net;
    sm_chip_t chip;
    sm_deploy_t d;
    sm_errbuf_t eb = {0};
    CU_ASSERT_EQUAL_FATAL(sm_net_builtin(netspec, &net, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_chip_resolve(chipspec, &chip, &eb), 0);
    int rc = sm_deploy_build(&net, &chip, 3, &d, &eb);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    uint32_t ncores_chip = chip.width * chip.height * chip.cores_per_tile;
    uint8_t *want = malloc(ncores_chip), *have = malloc(ncores_chip);
    uint32_t *got = malloc(ncores_chip * sizeof *got);
    uint32_t bad = 0;
    for (uint32_t q = 0; q < d.npieces; q++) {
        const sm_piece_t *pc = &d.pieces[q];
        memset(want, 0, ncores_chip);
        memset(have, 0, ncores_chip);
        for (uint32_t i = pc->first; i < pc->first + pc->count; i++)
            for (uint64_t s = d.row[i]; s < d.row[i + 1]; s++) {
                uint32_t post = SM_SYN_POST(d.syn[s].tgt), c = 0;
                while (!(post >= d.cores[c].first && post < d.cores[c].first + d.cores[c].count))
                    c++;
                want[d.cores[c].tile * chip.cores_per_tile + d.cores[c].slot] = 1;
            }
        for (uint32_t i = 0; i < pc->count; i++) {
            uint32_t ng = 0;
            uint64_t hops;
            if (pc->ndest == 0)
                break;
            rc = sm_mesh_route(&d.mesh, d.cores[pc->core].tile, pc->key + i, 0, got, &ng, &hops, NULL);
            CU_ASSERT_EQUAL(rc, 0);
            for (uint32_t k = 0; k < ng; k++)
                have[got[k]]++;
            for (uint32_t c = 0; c < ncores_chip; c++)
                if (have[c] != want[c])
                    bad++;
            memset(have, 0, ncores_chip);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(d.npieces >= 4);
    free(want);
    free(have);
    free(got);
    sm_deploy_free(&d);
    sm_net_free(&net);
}

static void test_keys_reach(void)
{
    check_keys_reach("cuba:600", "small:4x4");
    check_keys_reach("cuba:1000", "small:6x5");
    check_keys_reach("cuba:3000", "loihi");
}

/* The indexed lookup answers as a first-match scan in order, with overlapping masks and repeated keys. */
static void test_table_index(void)
{
    sm_mesh_t m;
    CU_ASSERT_EQUAL_FATAL(sm_mesh_init(&m, 1, 1, 1, 4096), 0);
    sm_table_t *t = &m.tables[0];
    uint32_t x = 12345;
    t->entries = malloc(2000 * sizeof *t->entries);
    for (uint32_t i = 0; i < 2000; i++) {
        x = x * 1103515245u + 12345u;
        uint32_t bits = 20 + (x >> 28) % 12; /* masks of 20 to 31 leading ones */
        uint32_t mask = ~0u << (32 - bits);
        x = x * 1103515245u + 12345u;
        t->entries[i].key = (x & 0x00ffffffu) & mask;
        t->entries[i].mask = mask;
        t->entries[i].route = i;
    }
    t->n = 2000;
    CU_ASSERT_EQUAL_FATAL(sm_table_index(t), 0);
    uint32_t mismatches = 0, hits = 0;
    for (uint32_t k = 0; k < 40000; k++) {
        x = x * 1103515245u + 12345u;
        uint32_t key = k < 2000 ? t->entries[k].key | (x & ~t->entries[k].mask) : x & 0x00ffffffu;
        uint32_t want = UINT32_MAX, got = UINT32_MAX;
        for (uint32_t i = 0; i < t->n; i++)
            if ((key & t->entries[i].mask) == t->entries[i].key) {
                want = t->entries[i].route;
                break;
            }
        if (!sm_table_lookup(t, key, &got))
            got = UINT32_MAX;
        mismatches += want != got;
        hits += want != UINT32_MAX;
    }
    CU_ASSERT_EQUAL(mismatches, 0);
    CU_ASSERT(hits >= 2000);
    sm_mesh_free(&m);
}

int sm_test_router_register(void)
{
    CU_pSuite s = CU_add_suite("router", NULL, NULL);
    if (!s || !CU_add_test(s, "XY paths", test_xy_paths) ||
        !CU_add_test(s, "multicast replication and hop counts", test_multicast) ||
        !CU_add_test(s, "default routing", test_default_routing) ||
        !CU_add_test(s, "table capacity", test_table_capacity) ||
        !CU_add_test(s, "indexed lookup equals first-match scan", test_table_index) ||
        !CU_add_test(s, "every key reaches exactly its cores", test_keys_reach))
        return -1;
    return 0;
}
