/* tests/test_noc.c: the cycle-level mesh against closed forms: zero-load latency, mean hops of uniform traffic,
 * the ideal router's saturation against the channel-load bound, multicast link counts, drop accounting. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spikemesh/spikemesh.h"
#include "tests/unit.h"

static const sm_noc_params_t iq_params = {.kind = SM_NOC_IQ, .buffer_depth = 4, .packet_flits = 1,
                                          .link_flits = 1, .hop_cycles_ew = 1, .hop_cycles_ns = 1};

typedef struct {
    uint64_t n, latency, hops;
} got_t;

static void on_deliver(void *ctx, uint64_t tag, uint32_t tile, uint32_t ncores, uint64_t latency, uint32_t hops)
{
    got_t *g = ctx;
    (void)tag;
    (void)tile;
    g->n += ncores;
    g->latency = latency;
    g->hops = hops;
}

/* One packet alone in the mesh: latency = |dx| x hop_ew + |dy| x hop_ns + ceil(flits / link flits). */
static void check_zero_load(sm_noc_kind_t kind)
{
    sm_mesh_t m;
    sm_noc_t *noc;
    sm_noc_params_t p = iq_params;
    p.kind = kind;
    p.hop_cycles_ew = 2;
    p.hop_cycles_ns = 3;
    p.packet_flits = 3;
    p.link_flits = 2;
    CU_ASSERT_EQUAL_FATAL(sm_mesh_init(&m, 5, 4, 1, 1), 0);
    CU_ASSERT_EQUAL_FATAL(sm_noc_create(&noc, &m, &p, NULL), 0);
    got_t g = {0};
    sm_noc_on_deliver(noc, on_deliver, &g);
    uint32_t bad = 0;
    for (uint32_t s = 0; s < 20; s++)
        for (uint32_t d = 0; d < 20; d++) {
            if (s == d)
                continue;
            memset(&g, 0, sizeof g);
            CU_ASSERT_EQUAL_FATAL(sm_noc_inject(noc, s, d, 0, 0), 0);
            sm_noc_drain(noc, 1000);
            uint32_t dx = (uint32_t)abs((int)(s % 5) - (int)(d % 5)), dy = (uint32_t)abs((int)(s / 5) - (int)(d / 5));
            bad += g.n != 1 || g.hops != dx + dy || g.latency != dx * 2 + dy * 3 + 2;
        }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(sm_noc_in_flight(noc), 0);
    sm_noc_destroy(noc);
    sm_mesh_free(&m);
}

/* On a board (2 x 2 chips of 3 x 2 tiles), links between chips take chip_hop_cycles: zero-load latency is
 * on-chip hops x their cycles + chip crossings x chip_hop_cycles + serialization. */
static void test_board_latency(void)
{
    sm_mesh_t m;
    sm_noc_t *noc;
    sm_noc_params_t p = iq_params;
    p.hop_cycles_ew = 2;
    p.hop_cycles_ns = 3;
    p.chip_hop_cycles = 11;
    p.chip_link_flits = 1;
    CU_ASSERT_EQUAL_FATAL(sm_mesh_init(&m, 6, 4, 1, 1), 0);
    m.chip_w = 3;
    m.chip_h = 2;
    CU_ASSERT_EQUAL_FATAL(sm_noc_create(&noc, &m, &p, NULL), 0);
    got_t g = {0};
    sm_noc_on_deliver(noc, on_deliver, &g);
    uint32_t bad = 0;
    for (uint32_t s = 0; s < 24; s++)
        for (uint32_t dd = 0; dd < 24; dd++) {
            if (s == dd)
                continue;
            memset(&g, 0, sizeof g);
            sm_noc_inject(noc, s, dd, 0, 0);
            sm_noc_drain(noc, 1000);
            uint32_t sx = s % 6, sy = s / 6, dx = dd % 6, dy = dd / 6;
            uint32_t cx = sx / 3 != dx / 3, cy = sy / 2 != dy / 2; /* chip boundaries crossed (at most one each) */
            uint32_t hx = (uint32_t)abs((int)sx - (int)dx), hy = (uint32_t)abs((int)sy - (int)dy);
            uint64_t want = (hx - cx) * 2 + (hy - cy) * 3 + (cx + cy) * 11 + 1;
            bad += g.latency != want;
        }
    CU_ASSERT_EQUAL(bad, 0);
    sm_noc_destroy(noc);
    sm_mesh_free(&m);
}

static void test_zero_load(void)
{
    check_zero_load(SM_NOC_IQ);
    check_zero_load(SM_NOC_IDEAL);
}

/* Uniform traffic without self-traffic on a K x K mesh under XY routing: mean hops 2K/3 (the mean of
 * |dx| + |dy| over distinct pairs), within five standard errors. */
static void test_uniform_hops(void)
{
    uint32_t K = 8;
    sm_traffic_result_t r;
    CU_ASSERT_EQUAL_FATAL(sm_traffic_run(K, K, &iq_params, SM_PAT_UNIFORM, 0.05, 20000, 3, &r, NULL, NULL, NULL), 0);
    /* variance of the hop count over distinct pairs, enumerated */
    double m1 = 0, m2 = 0, n = 0;
    for (uint32_t s = 0; s < K * K; s++)
        for (uint32_t d = 0; d < K * K; d++)
            if (s != d) {
                double h = fabs((double)(s % K) - (double)(d % K)) + fabs((double)(s / K) - (double)(d / K));
                m1 += h;
                m2 += h * h;
                n++;
            }
    m1 /= n;
    m2 /= n;
    CU_ASSERT(fabs(m1 - 2.0 * K / 3.0) < 1e-12); /* the enumeration agrees with the closed form */
    double se = sqrt(m2 - m1 * m1) / sqrt((double)r.measured);
    CU_ASSERT(r.measured > 10000);
    CU_ASSERT(fabs(r.mean_hops - 2.0 * K / 3.0) < 5 * se);
    CU_ASSERT_FALSE(r.saturated);
    CU_ASSERT(fabs(r.accepted - 0.05) < 0.05 * 0.05);
}

/* Ideal output-queued routers, one-flit packets: uniform traffic saturates near the channel-load bound
 * 4(K^2 - 1) / K^3 (0.492 at K = 8): unsaturated at 90% of it, saturated at 110%, where latency keeps growing
 * with the length of the run. Input-queued routers with small buffers saturate lower; transpose saturates
 * before uniform in both. */
static void test_saturation(void)
{
    uint32_t K = 8;
    double bound = 4.0 * (K * K - 1) / (double)(K * K * K);
    sm_noc_params_t ideal = iq_params;
    ideal.kind = SM_NOC_IDEAL;
    sm_traffic_result_t lo, hi, hi2, iq, tr_i, tr_q, un_q;
    CU_ASSERT_EQUAL_FATAL(sm_traffic_run(K, K, &ideal, SM_PAT_UNIFORM, 0.9 * bound, 4000, 1, &lo, NULL, NULL, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(sm_traffic_run(K, K, &ideal, SM_PAT_UNIFORM, 1.1 * bound, 4000, 1, &hi, NULL, NULL, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(sm_traffic_run(K, K, &ideal, SM_PAT_UNIFORM, 1.1 * bound, 8000, 1, &hi2, NULL, NULL, NULL), 0);
    CU_ASSERT_FALSE(lo.saturated);
    CU_ASSERT(hi.saturated);
    CU_ASSERT(hi.accepted < 1.1 * bound * 0.97);        /* throughput stops following the offered load */
    CU_ASSERT(hi2.mean_latency > 1.5 * hi.mean_latency); /* and latency grows without bound */
    CU_ASSERT(lo.mean_latency < 3 * lo.zero_load_latency);
    /* input-queued, 2-packet buffers: saturated already at 90% of the bound */
    sm_noc_params_t small = iq_params;
    small.buffer_depth = 2;
    CU_ASSERT_EQUAL_FATAL(sm_traffic_run(K, K, &small, SM_PAT_UNIFORM, 0.9 * bound, 4000, 1, &iq, NULL, NULL, NULL), 0);
    CU_ASSERT(iq.saturated);
    /* transpose saturates before uniform, in both routers */
    CU_ASSERT_EQUAL_FATAL(sm_traffic_run(K, K, &ideal, SM_PAT_TRANSPOSE, 0.25, 4000, 1, &tr_i, NULL, NULL, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(sm_traffic_run(K, K, &small, SM_PAT_TRANSPOSE, 0.25, 4000, 1, &tr_q, NULL, NULL, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(sm_traffic_run(K, K, &small, SM_PAT_UNIFORM, 0.25, 4000, 1, &un_q, NULL, NULL, NULL), 0);
    CU_ASSERT(tr_i.saturated);
    CU_ASSERT(tr_q.saturated);
    CU_ASSERT_FALSE(un_q.saturated);
}

/* A multicast packet to every core of a 6x5 mesh of 3-core tiles crosses exactly as many links as its XY
 * tree has (tiles - 1: a spanning tree) and reaches every core once. */
static void test_multicast_links(void)
{
    sm_mesh_t m;
    sm_noc_t *noc;
    uint32_t W = 6, H = 5, C = 3, ncores = W * H * C, *dst = malloc(ncores * sizeof *dst), ntree;
    for (uint32_t k = 0; k < ncores; k++)
        dst[k] = k;
    CU_ASSERT_EQUAL_FATAL(sm_mesh_init(&m, W, H, C, 8), 0);
    CU_ASSERT_EQUAL_FATAL(sm_mesh_add_tree(&m, 2 * W + 3, 0x100, 0xffffff00u, dst, ncores, NULL, &ntree, NULL), 0);
    for (int kind = 0; kind < 2; kind++) {
        sm_noc_params_t p = iq_params;
        p.kind = (sm_noc_kind_t)kind;
        CU_ASSERT_EQUAL_FATAL(sm_noc_create(&noc, &m, &p, NULL), 0);
        got_t g = {0};
        sm_noc_on_deliver(noc, on_deliver, &g);
        CU_ASSERT_EQUAL(sm_noc_inject(noc, 2 * W + 3, UINT32_MAX, 0x1ab, 0), 0);
        sm_noc_drain(noc, 10000);
        sm_noc_totals_t t = sm_noc_totals(noc);
        CU_ASSERT_EQUAL(t.link_traversals, W * H - 1);
        CU_ASSERT_EQUAL(ntree, W * H);
        CU_ASSERT_EQUAL(t.sent, ncores);
        CU_ASSERT_EQUAL(t.delivered, ncores);
        CU_ASSERT_EQUAL(g.n, ncores);
        uint64_t sum = 0;
        for (uint32_t tt = 0; tt < W * H; tt++)
            for (int o = 0; o < 4; o++)
                sum += sm_noc_ports(noc, tt)[o].packets;
        CU_ASSERT_EQUAL(sum, W * H - 1);
        sm_noc_destroy(noc);
    }
    free(dst);
    sm_mesh_free(&m);
}

/* Tiny buffers and a short blocking limit: packets are dropped, counted, and the totals add up
 * (sent = delivered + dropped); re-injection trades drops for retries. Unicast and multicast. */
static void test_drops(void)
{
    sm_noc_params_t p = iq_params;
    p.buffer_depth = 1;
    p.drop_after = 3;
    sm_traffic_result_t r;
    CU_ASSERT_EQUAL_FATAL(sm_traffic_run(6, 6, &p, SM_PAT_HOTSPOT, 0.5, 2000, 5, &r, NULL, NULL, NULL), 0);
    CU_ASSERT(r.totals.dropped > 0);
    CU_ASSERT_EQUAL(r.in_flight, 0);
    CU_ASSERT_EQUAL(r.totals.sent, r.totals.delivered + r.totals.dropped);
    /* multicast storms through one mesh */
    sm_mesh_t m;
    sm_noc_t *noc;
    uint32_t W = 4, H = 4, C = 2, nc = W * H * C, dst[32];
    for (uint32_t k = 0; k < nc; k++)
        dst[k] = k;
    CU_ASSERT_EQUAL_FATAL(sm_mesh_init(&m, W, H, C, 64), 0);
    for (uint32_t s = 0; s < W * H; s++)
        CU_ASSERT_EQUAL_FATAL(sm_mesh_add_tree(&m, s, s << 8, 0xffffff00u, dst, nc, NULL, NULL, NULL), 0);
    for (int re = 0; re < 2; re++) {
        p.reinject = re;
        CU_ASSERT_EQUAL_FATAL(sm_noc_create(&noc, &m, &p, NULL), 0);
        for (uint32_t cyc = 0; cyc < 200; cyc++) {
            for (uint32_t s = 0; s < W * H; s++)
                CU_ASSERT_EQUAL(sm_noc_inject(noc, s, UINT32_MAX, (s << 8) | cyc, 0), 0);
            sm_noc_cycle(noc);
        }
        sm_noc_drain(noc, 1000000);
        sm_noc_totals_t t = sm_noc_totals(noc);
        CU_ASSERT_EQUAL(sm_noc_in_flight(noc), 0);
        CU_ASSERT_EQUAL(t.sent, 200ull * W * H * nc);
        CU_ASSERT_EQUAL(t.sent, t.delivered + t.dropped);
        if (re) {
            CU_ASSERT(t.reinjected > 0);
        } else {
            CU_ASSERT(t.dropped > 0);
        }
        uint64_t port_drops = 0;
        for (uint32_t tt = 0; tt < W * H; tt++)
            for (int o = 0; o < 5; o++)
                port_drops += sm_noc_ports(noc, tt)[o].drops;
        CU_ASSERT(re || port_drops > 0);
        sm_noc_destroy(noc);
    }
    sm_mesh_free(&m);
}

/* The same traffic twice gives the same result, bit for bit. */
static void test_noc_deterministic(void)
{
    sm_traffic_result_t a, b;
    CU_ASSERT_EQUAL_FATAL(sm_traffic_run(6, 6, &iq_params, SM_PAT_TORNADO, 0.2, 3000, 9, &a, NULL, NULL, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(sm_traffic_run(6, 6, &iq_params, SM_PAT_TORNADO, 0.2, 3000, 9, &b, NULL, NULL, NULL), 0);
    CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof a), 0);
}

static void test_patterns(void)
{
    /* transpose (x, y) -> (y, x); bitcomp mirrors; tornado moves half way less one; diagonal tiles of
     * transpose send nothing */
    CU_ASSERT_EQUAL(sm_pattern_dest(SM_PAT_TRANSPOSE, 8, 8, 1 * 8 + 3, 0), 3 * 8 + 1);
    CU_ASSERT_EQUAL(sm_pattern_dest(SM_PAT_TRANSPOSE, 8, 8, 2 * 8 + 2, 0), UINT32_MAX);
    CU_ASSERT_EQUAL(sm_pattern_dest(SM_PAT_BITCOMP, 8, 8, 0, 0), 63);
    CU_ASSERT_EQUAL(sm_pattern_dest(SM_PAT_TORNADO, 8, 8, 0, 0), 3 * 8 + 3);
    for (uint32_t r = 0; r < 100000; r += 7) {
        uint32_t d = sm_pattern_dest(SM_PAT_UNIFORM, 8, 8, 5, r * 42949u);
        CU_ASSERT(d != 5 && d < 64);
    }
}

int sm_test_noc_register(void)
{
    CU_pSuite s = CU_add_suite("noc", NULL, NULL);
    if (!s || !CU_add_test(s, "zero-load latency", test_zero_load) ||
        !CU_add_test(s, "zero-load latency across chips of a board", test_board_latency) ||
        !CU_add_test(s, "uniform traffic: mean hops 2K/3", test_uniform_hops) ||
        !CU_add_test(s, "saturation against the channel-load bound", test_saturation) ||
        !CU_add_test(s, "multicast to every core: one traversal per tree link", test_multicast_links) ||
        !CU_add_test(s, "drops are counted and totals add up", test_drops) ||
        !CU_add_test(s, "deterministic", test_noc_deterministic) || !CU_add_test(s, "patterns", test_patterns))
        return -1;
    return 0;
}
