/* tests/test_lif.c: LIF neurons against closed-form solutions: membrane trajectory and spike steps under
 * constant drive, refractoriness, synaptic current decay and the membrane's response to one synaptic event. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spikemesh/spikemesh.h"
#include "tests/unit.h"

/* A network of LIF populations of the given sizes, built through the public structures. */
static void mk_net(sm_net_t *net, uint32_t npops, const uint32_t *sizes, const sm_lif_params_t *p, double dt)
{
    memset(net, 0, sizeof *net);
    strcpy(net->name, "test");
    net->dt = dt;
    net->npops = npops;
    net->pops = calloc(npops, sizeof *net->pops);
    uint32_t first = 0;
    for (uint32_t k = 0; k < npops; k++) {
        sm_pop_t *pop = &net->pops[k];
        snprintf(pop->name, sizeof pop->name, "p%u", k);
        pop->size = sizes[k];
        pop->model = SM_MODEL_LIF;
        pop->lif = p[k];
        pop->v_init_lo = pop->v_init_hi = p[k].v_reset;
        pop->first = first;
        first += sizes[k];
    }
    net->n = first;
}

static void add_pair(sm_net_t *net, uint32_t pre, uint32_t post, double w, int inh, uint32_t delay)
{
    net->projs = realloc(net->projs, (net->nprojs + 1) * sizeof *net->projs);
    sm_proj_t *pr = &net->projs[net->nprojs++];
    memset(pr, 0, sizeof *pr);
    pr->pre = pre;
    pr->post = post;
    pr->inhibitory = (uint8_t)inh;
    pr->rule = SM_CONN_LIST;
    pr->npairs = 1;
    pr->pairs = calloc(2, sizeof *pr->pairs);
    pr->weight = w;
    pr->delay_steps = delay;
}

typedef struct {
    sm_net_t net;
    sm_deploy_t dep;
    sm_sim_t *sim;
} fixture_t;

static int fx_start(fixture_t *fx)
{
    sm_chip_t chip;
    sm_errbuf_t eb;
    sm_run_opts_t ro = {.duration = 1e6, .progress = 0};
    CU_ASSERT_EQUAL_FATAL(sm_chip_preset("small", &chip), 0);
    int rc = sm_deploy_build(&fx->net, &chip, 7, &fx->dep, &eb);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    rc = sm_sim_create(&fx->sim, &fx->dep, &ro, &eb);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    return 0;
}

static void fx_stop(fixture_t *fx)
{
    sm_sim_destroy(fx->sim);
    sm_deploy_free(&fx->dep);
    sm_net_free(&fx->net);
}

static const sm_lif_params_t base_params = {
    .tau_m = 20.0, .tau_e = 5.0, .tau_i = 10.0, .v_thresh = -50.0,
    .v_reset = -60.0, .v_rest = -65.0, .t_ref = 2.0, .i_bias = 20.0,
};

/* Under constant drive the membrane follows v(t) = v_inf + (v0 - v_inf) exp(-t / tau_m); the first spike is in
 * the step whose end passes t* = tau_m ln((v_inf - v0) / (v_inf - v_th)); after a spike v is held at v_reset for
 * the refractory steps and the next interval starts again from v_reset. */
static void check_constant_drive(double dt, double t_ref, double i_bias)
{
    sm_lif_params_t p = base_params;
    p.t_ref = t_ref;
    p.i_bias = i_bias;
    uint32_t size = 1;
    fixture_t fx;
    mk_net(&fx.net, 1, &size, &p, dt);
    fx_start(&fx);
    double v_inf = p.v_rest + p.i_bias, tau = p.tau_m;
    double tstar = tau * log((v_inf - p.v_reset) / (v_inf - p.v_thresh));
    uint64_t isi_free = (uint64_t)floor(tstar / dt); /* steps from the first integrating step to the spike */
    uint64_t ref_steps = (uint64_t)floor(t_ref / dt + 1e-3);
    uint64_t first_int = 0, expect_spike = isi_free, nspikes = 0;
    double worst = 0.0;
    for (uint64_t k = 0; k < 3000; k++) {
        uint32_t ns = sm_sim_step(fx.sim);
        double v = sm_sim_v(fx.sim, 0);
        if (k == expect_spike) {
            CU_ASSERT_EQUAL(ns, 1);
            CU_ASSERT_EQUAL(v, p.v_reset);
            nspikes++;
            first_int = k + (ref_steps > 1 ? ref_steps : 1);
            expect_spike = first_int + isi_free;
            continue;
        }
        CU_ASSERT_EQUAL(ns, 0);
        if (k < first_int) { /* refractory: held exactly at v_reset */
            CU_ASSERT_EQUAL(v, p.v_reset);
            continue;
        }
        double t = (double)(k - first_int + 1) * dt;
        double ref = v_inf + (p.v_reset - v_inf) * exp(-t / tau);
        double e = sm_test_relerr(v - v_inf, ref - v_inf);
        if (e > worst)
            worst = e;
    }
    CU_ASSERT(nspikes >= 3);
    CU_ASSERT(worst < 1e-9);
    fx_stop(&fx);
}

static void test_constant_drive(void)
{
    check_constant_drive(0.1, 2.0, 20.0);
    check_constant_drive(0.1, 0.0, 20.0);
    check_constant_drive(0.05, 5.0, 17.0);
    check_constant_drive(0.25, 1.0, 40.0);
}

/* One excitatory event of weight w at step s+1 and one inhibitory event three steps later:
 * ge(t) = w exp(-t/tau_e), v - v_inf = w tau_e / (tau_e - tau_m) (exp(-t/tau_e) - exp(-t/tau_m)) (+ the same
 * with tau_i), or w (t / tau_m) exp(-t / tau_m) when tau_e == tau_m. */
static double psp(double w, double ts, double tm, double t)
{
    if (t < 0)
        return 0.0;
    if (ts == tm)
        return w * (t / tm) * exp(-t / tm);
    return w * ts / (ts - tm) * (exp(-t / ts) - exp(-t / tm));
}

static void check_synaptic_response(double tau_e, double tau_i)
{
    sm_lif_params_t p[2] = {base_params, base_params};
    p[0].i_bias = 100000.0; /* the driver spikes in its first step, then stays refractory */
    p[0].t_ref = 1000.0;
    p[1].i_bias = 0.0;
    p[1].v_reset = -65.0; /* the target starts at rest */
    p[1].tau_e = tau_e;
    p[1].tau_i = tau_i;
    uint32_t sizes[2] = {1, 1};
    fixture_t fx;
    double dt = 0.1, we = 2.0, wi = -3.0;
    mk_net(&fx.net, 2, sizes, p, dt);
    add_pair(&fx.net, 0, 1, we, 0, 1);
    add_pair(&fx.net, 0, 1, wi, 1, 3);
    fx_start(&fx);
    CU_ASSERT_EQUAL(fx.dep.nsyn, 2);
    uint32_t ns = sm_sim_step(fx.sim); /* step 0: the driver spikes */
    CU_ASSERT_EQUAL(ns, 1);
    double worst_v = 0, worst_g = 0, v_inf = p[1].v_rest;
    for (uint64_t k = 1; k < 2000; k++) {
        ns = sm_sim_step(fx.sim);
        CU_ASSERT_EQUAL(ns, 0);
        double te = (double)k * dt, ti = (double)(k - 2) * dt; /* the inhibitory event lands in step 3 */
        double v = sm_sim_v(fx.sim, 1), ge = sm_sim_ge(fx.sim, 1), gi = sm_sim_gi(fx.sim, 1);
        double vref = v_inf + psp(we, tau_e, p[1].tau_m, te) + psp(wi, tau_i, p[1].tau_m, ti);
        double e = sm_test_relerr(v - v_inf, vref - v_inf);
        if (e > worst_v)
            worst_v = e;
        e = sm_test_relerr(ge, we * exp(-te / tau_e));
        if (e > worst_g)
            worst_g = e;
        if (k >= 3) {
            e = sm_test_relerr(gi, wi * exp(-ti / tau_i));
            if (e > worst_g)
                worst_g = e;
        } else {
            CU_ASSERT_EQUAL(gi, 0.0);
        }
    }
    CU_ASSERT(worst_v < 1e-9);
    CU_ASSERT(worst_g < 1e-9);
    fx_stop(&fx);
}

static void test_synaptic_response(void)
{
    check_synaptic_response(5.0, 10.0);
    check_synaptic_response(20.0, 3.0); /* tau_e == tau_m: the limit form */
}

/* Propagators: sm_lif_consts against the same closed forms evaluated directly. */
static void test_consts(void)
{
    sm_lif_consts_t c;
    sm_lif_params_t p = base_params;
    CU_ASSERT_EQUAL(sm_lif_consts(&p, 0.1, &c, NULL), 0);
    CU_ASSERT(sm_test_relerr(c.pm, exp(-0.1 / 20.0)) < 1e-15);
    CU_ASSERT(sm_test_relerr(c.ce, psp(1.0, 5.0, 20.0, 0.1)) < 1e-12);
    CU_ASSERT(sm_test_relerr(c.ci, psp(1.0, 10.0, 20.0, 0.1)) < 1e-12);
    CU_ASSERT_EQUAL(c.ref_steps, 20);
    p.tau_m = -1.0;
    CU_ASSERT_EQUAL(sm_lif_consts(&p, 0.1, &c, NULL), SM_EINVAL);
    p = base_params;
    p.t_ref = NAN;
    CU_ASSERT_EQUAL(sm_lif_consts(&p, 0.1, &c, NULL), SM_EINVAL);
    CU_ASSERT_EQUAL(sm_lif_consts(&base_params, 0.0, &c, NULL), SM_EINVAL);
    /* A membrane 1000 (and 1e196) times faster than the step: exp(-dt / tau_m) underflows to 0 and the PSP factor
     * is a (exp(-dt / tau_s) - 0) / (a - 1 / tau_s), a = 1 / tau_m (it came out NaN: no spikes, no message). */
    const double fast[3] = {1e-4, 1e-200, 0.1 / 739}; /* the last: exp(-dt / tau_m) is subnormal, not 0 */
    for (int k = 0; k < 3; k++) {
        p = base_params;
        p.tau_m = fast[k];
        CU_ASSERT_EQUAL(sm_lif_consts(&p, 0.1, &c, NULL), 0);
        double a = 1.0 / fast[k];
        CU_ASSERT(k < 2 ? c.pm == 0.0 : c.pm > 0.0 && c.pm < DBL_MIN);
        CU_ASSERT(sm_test_relerr(c.ce, a * exp(-0.1 / 5.0) / (a - 1.0 / 5.0)) < 1e-12);
        CU_ASSERT(sm_test_relerr(c.ci, a * exp(-0.1 / 10.0) / (a - 1.0 / 10.0)) < 1e-12);
    }
    /* The same with a synapse as fast as the membrane (tau_e = tau_m): the integral is pm a dt (it was 0 / 0, and
     * the network was refused). dt / tau = 1e4: pm and the factor are 0; 740: pm is subnormal. */
    const double ratio[2] = {1e4, 740};
    for (int k = 0; k < 2; k++) {
        p = base_params;
        p.tau_m = p.tau_e = 10.0;
        CU_ASSERT_EQUAL(sm_lif_consts(&p, 10.0 * ratio[k], &c, NULL), 0);
        double want = exp(-ratio[k]) * ratio[k]; /* pm a dt */
        CU_ASSERT(isfinite(c.ce) && fabs(c.ce - want) <= 1e-12 * want + 1e-320);
        CU_ASSERT(k == 0 ? c.ce == 0.0 : c.ce > 0.0);
        CU_ASSERT(isfinite(c.ci));
    }
    p = base_params;
    p.tau_m = 5e-324; /* 1 / tau_m is infinite */
    CU_ASSERT_EQUAL(sm_lif_consts(&p, 0.1, &c, NULL), SM_ERANGE);
    p = base_params;
    p.v_rest = p.i_bias = 1e308; /* where v settles overflows */
    CU_ASSERT_EQUAL(sm_lif_consts(&p, 0.1, &c, NULL), SM_ERANGE);
}

/* Poisson sources: the spike count of 2000 sources at 20 Hz over 1 s is within 5 sigma of 40000. */
static void test_poisson_rate(void)
{
    uint32_t n = 2000, total = 0, buf[2001];
    double p = 20.0 * 1e-3; /* 20 Hz, dt 1 ms */
    for (uint64_t step = 0; step < 1000; step++)
        total += sm_core_poisson_step(p, 11, n, 0, step, buf);
    double mean = n * 1000 * p, sd = sqrt(mean * (1 - p));
    CU_ASSERT(fabs((double)total - mean) < 5 * sd);
    /* The same draw again gives the same spikes (a pure function of seed, neuron and step). */
    uint32_t a[2001], b[2001];
    uint32_t na = sm_core_poisson_step(0.3, 5, n, 100, 77, a), nb = sm_core_poisson_step(0.3, 5, n, 100, 77, b);
    CU_ASSERT_EQUAL(na, nb);
    CU_ASSERT_EQUAL(memcmp(a, b, na * sizeof *a), 0);
}

/* The Poisson loops (AVX-512, AVX2, C) against sm_philox and sm_u01 as docs/network-format.md states the draw:
 * neuron id spikes at a step when sm_u01 of the first two words of Philox on (SM_STREAM_POISSON, id, step low,
 * step high) is below p. Probabilities at and next to the grid of 2^-53 that the comparison on integers turns on,
 * counts that are not a multiple of the vector width, steps past 2^32 and seeds with high bits. */
static uint32_t poisson_ref(double p, uint64_t seed, uint32_t n, uint32_t base, uint64_t step, uint32_t *out)
{
    uint32_t ns = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t r[4];
        sm_philox(seed, SM_STREAM_POISSON, base + i, (uint32_t)step, (uint32_t)(step >> 32), r);
        if (sm_u01(r[0], r[1]) < p)
            out[ns++] = base + i;
    }
    return ns;
}

static void test_poisson_bits(void)
{
    enum { N = 203 };
    uint32_t want[N], got[N];
    double ps[12] = {0.0, -0.5, 1e-300, 0.002, 0.05, 0.3, 0.5, 0.999, 1.0, 1.5, 0, 0};
    const uint64_t seeds[3] = {1, 0x9E3779B97F4A7C15ull, 0xFFFFFFFF00000001ull};
    const uint64_t steps[4] = {0, 77, 0xFFFFFFFFull, 0x100000005ull};
    int levels = 0;
    for (int lvl = 2; lvl >= 0; lvl--) {
        sm_core_simd_limit(lvl);
        if (strcmp(sm_core_simd(), lvl == 0 ? "c" : lvl == 1 ? "avx2" : "avx512") != 0)
            continue;
        levels++;
        int bad = 0;
        uint64_t spikes = 0;
        for (int si = 0; si < 3; si++)
            for (int ti = 0; ti < 4; ti++) {
                /* p exactly at the draw of one neuron (x / 2^53) and one grid step above it: that neuron spikes
                 * only with the larger one */
                uint32_t r[4];
                sm_philox(seeds[si], SM_STREAM_POISSON, 1000 + 7, (uint32_t)steps[ti], (uint32_t)(steps[ti] >> 32), r);
                ps[10] = sm_u01(r[0], r[1]);
                ps[11] = nextafter(ps[10] + 1.0 / 9007199254740992.0, 0.0) + 0.0;
                for (int pi = 0; pi < 12; pi++)
                    for (uint32_t n = 0; n <= N; n += n < 40 ? 1 : 41) {
                        uint32_t nw = poisson_ref(ps[pi], seeds[si], n, 1000, steps[ti], want);
                        uint32_t ng = sm_core_poisson_step(ps[pi], seeds[si], n, 1000, steps[ti], got);
                        bad |= nw != ng || memcmp(want, got, nw * sizeof *want) != 0;
                        spikes += ng;
                    }
            }
        CU_ASSERT_FALSE(bad);
        CU_ASSERT(spikes > 1000); /* the comparisons saw spikes */
    }
    CU_ASSERT(levels >= 1);
    sm_core_simd_limit(2);
}

/* A reference for the queue kernels: one step written plainly from docs/network-format.md, with a refractory
 * counter per neuron (ref_steps + 1 right after a spike, counting down; v held while more than one step is left)
 * and the same operations in the same order as the kernels, so that the bits can be compared. */
#define LIF_REF_STEP(NAME, T)                                                                                  \
    static uint32_t NAME(const sm_lif_consts_t *c, uint32_t n, T *v, T *ge, T *gi, int32_t *ref, T *in_e,       \
                         T *in_i, uint32_t base, uint32_t *spikes)                                            \
    {                                                                                                         \
        const T v_inf = (T)c->v_inf, pm = (T)c->pm, ce = (T)c->ce, ci = (T)c->ci;                             \
        uint32_t ns = 0;                                                                                      \
        for (uint32_t i = 0; i < n; i++) {                                                                    \
            if (in_e) {                                                                                       \
                ge[i] += in_e[i];                                                                             \
                gi[i] += in_i[i];                                                                             \
                in_e[i] = in_i[i] = 0;                                                                        \
            }                                                                                                 \
            if (ref[i] > 0)                                                                                   \
                ref[i]--;                                                                                     \
            if (ref[i] <= 1) {                                                                                \
                T vn = v_inf + (v[i] - v_inf) * pm + ge[i] * ce + gi[i] * ci;                                 \
                if (vn > (T)c->v_thresh) {                                                                    \
                    v[i] = (T)c->v_reset;                                                                     \
                    ref[i] = c->ref_steps + 1;                                                                \
                    spikes[ns++] = base + i;                                                                  \
                } else {                                                                                      \
                    v[i] = vn;                                                                                \
                }                                                                                             \
            }                                                                                                 \
            ge[i] *= (T)c->pe;                                                                                \
            gi[i] *= (T)c->pi;                                                                                \
        }                                                                                                     \
        return ns;                                                                                            \
    }
LIF_REF_STEP(ref_step_f64, double)
LIF_REF_STEP(ref_step_f32, float)

/* The queue kernels (sm_core_lifq_step*, used by the simulator) against that reference: the same spikes and the
 * same bits of v, ge, gi and the delay buffers, step after step, for refractory periods of 0 to 7 steps, with
 * and without delay buffers, in double and single precision, with the arrays starting `off` elements past a
 * 64-byte boundary (the vector loops peel up to the first one). Random inputs are large enough that neurons
 * spike often and some would cross threshold while refractory. */
#define LIFQ_N 301
#define LIFQ_STEPS 400
#define LIFQ_CASE(NAME, T, QK, CK, RING)                                                                       \
    static void NAME(const sm_lif_consts_t *c, int off, int *bad, uint64_t *nspikes)                          \
    {                                                                                                         \
        static _Alignas(64) T mem[5][2][LIFQ_N + 16];                                                         \
        T *v[2] = {mem[0][0] + off, mem[0][1] + off}, *ge[2] = {mem[1][0] + off, mem[1][1] + off};             \
        T *gi[2] = {mem[2][0] + off, mem[2][1] + off}, *ie[2] = {mem[3][0] + off, mem[3][1] + off};            \
        T *ii[2] = {mem[4][0] + off, mem[4][1] + off};                                                        \
        const size_t bytes = LIFQ_N * sizeof(T);                                                              \
        static int32_t ref[LIFQ_N];                                                                           \
        static uint32_t qi[LIFQ_N], qu[LIFQ_N], sa[LIFQ_N], sb[LIFQ_N];                                        \
        sm_refq_t q = {qi, qu, LIFQ_N, 0, 0};                                                                 \
        uint64_t x = 88172645463325252ull;                                                                    \
        memset(ref, 0, sizeof ref);                                                                           \
        for (int k = 0; k < 2; k++)                                                                           \
            for (int i = 0; i < LIFQ_N; i++) {                                                                \
                v[k][i] = (T)(c->v_reset + (c->v_thresh - c->v_reset) * (double)i / LIFQ_N);                  \
                ge[k][i] = gi[k][i] = ie[k][i] = ii[k][i] = 0;                                                \
            }                                                                                                 \
        for (uint64_t step = 0; step < LIFQ_STEPS; step++) {                                                  \
            for (int i = 0; i < LIFQ_N; i++) { /* xorshift64: inputs to both copies */                      \
                x ^= x << 13;                                                                                 \
                x ^= x >> 7;                                                                                  \
                x ^= x << 17;                                                                                 \
                T a = (T)((double)(x >> 40) / (double)(1u << 24) * 40.0 * (RING ? 1.0 : 0.5));              \
                T b = (T)(-(double)(x & 0xffffu) / 65536.0 * (i % 2 ? 5.0 : 6.0));                                            \
                if (RING) {                                                                                   \
                    ie[0][i] = ie[1][i] = a;                                                                  \
                    ii[0][i] = ii[1][i] = b;                                                                  \
                } else {                                                                                      \
                    ge[0][i] += a;                                                                            \
                    ge[1][i] += a;                                                                            \
                    gi[0][i] += b;                                                                            \
                    gi[1][i] += b;                                                                            \
                }                                                                                             \
            }                                                                                                 \
            uint32_t na = QK(c, LIFQ_N, v[0], ge[0], gi[0], ie[0], ii[0], &q, step, 7, sa);                   \
            uint32_t nb = CK(c, LIFQ_N, v[1], ge[1], gi[1], ref, RING ? ie[1] : NULL, ii[1], 7, sb);          \
            *nspikes += na;                                                                                   \
            int vbad = 0;                                                                                     \
            for (int i = 0; i < LIFQ_N; i++) { /* refractory: -inf (or NaN) in the queue kernels */          \
                T vq = isfinite(v[0][i]) ? v[0][i] : (T)c->v_reset;                                           \
                vbad |= memcmp(&vq, &v[1][i], sizeof vq) != 0;                                                \
            }                                                                                                 \
            if (na != nb || memcmp(sa, sb, na * sizeof *sa) != 0 || vbad || memcmp(ge[0], ge[1], bytes) != 0 || \
                memcmp(gi[0], gi[1], bytes) != 0 || memcmp(ie[0], ie[1], bytes) != 0 ||                      \
                memcmp(ii[0], ii[1], bytes) != 0) {                                                           \
                if (!*bad)                                                                                    \
                    printf("\n    %s: ref_steps %d, offset %d, step %llu: %u spikes against %u\n    ", #QK,    \
                           c->ref_steps, off, (unsigned long long)step, na, nb);                              \
                *bad = 1;                                                                                     \
                return;                                                                                       \
            }                                                                                                 \
        }                                                                                                     \
    }

LIFQ_CASE(lifq_f64, double, sm_core_lifq_step, ref_step_f64, 1)
LIFQ_CASE(lifq_f64_direct, double, sm_core_lifq_step_direct, ref_step_f64, 0)
LIFQ_CASE(lifq_f32, float, sm_core_lifq_step_f32, ref_step_f32, 1)
LIFQ_CASE(lifq_f32_direct, float, sm_core_lifq_step_f32_direct, ref_step_f32, 0)

static void lifq_levels(void)
{
    /* rs 8-15: the same refractory periods with tau_m = 0.5 us, where pm underflows to 0 in single precision and
     * a refractory neuron's -inf * pm is NaN, which must never count as above threshold */
    for (int rs = 0; rs <= 15; rs++) {
        sm_lif_params_t p = {.tau_m = rs > 7 ? 5e-4 : 20, .tau_e = 5, .tau_i = 10, .v_thresh = -50, .v_reset = -60,
                             .v_rest = -49, .t_ref = 0.1 * (rs % 8)};
        sm_lif_consts_t c;
        CU_ASSERT_EQUAL_FATAL(sm_lif_consts(&p, 0.1, &c, NULL), 0);
        CU_ASSERT_EQUAL(c.ref_steps, rs % 8);
        CU_ASSERT_EQUAL(c.prefetch, 0);
        for (int pf = 0; pf < 2; pf++) { /* the loop that prefetches ahead gives the same bits */
            int bad = 0;
            uint64_t ns = 0;
            c.prefetch = pf;
            for (int off = 0; off < 16; off += pf ? 3 : 5) { /* peels of 0 to 15 elements */
                lifq_f64(&c, off, &bad, &ns);
                lifq_f64_direct(&c, off, &bad, &ns);
                lifq_f32(&c, off, &bad, &ns);
                lifq_f32_direct(&c, off, &bad, &ns);
            }
            CU_ASSERT_FALSE(bad);
            /* Enough spikes that refractoriness is exercised: on average above one every 2 ref periods a neuron
             * (in each of the runs at the offsets above). */
            uint64_t runs = pf ? 6u : 4u;
            CU_ASSERT(ns > runs * 4u * LIFQ_N * LIFQ_STEPS / (2u * (rs % 8 + 2u)) / 2u);
        }
    }
}

static void test_refractory_queue(void)
{
    /* every vector loop this CPU has: AVX-512, AVX2 and the C loop, capped in turn */
    for (int lvl = 2; lvl >= 0; lvl--) {
        sm_core_simd_limit(lvl);
        const char *want = lvl == 0 ? "c" : lvl == 1 ? "avx2" : "avx512";
        if (strcmp(sm_core_simd(), want) != 0) {
            CU_ASSERT(lvl > 0); /* the C loop is always there; a wider one only where the CPU has it */
            continue;
        }
        lifq_levels();
    }
    sm_core_simd_limit(2);
}

int sm_test_lif_register(void)
{
    CU_pSuite s = CU_add_suite("lif", NULL, NULL);
    if (!s || !CU_add_test(s, "constant drive: trajectory, spike steps, refractoriness", test_constant_drive) ||
        !CU_add_test(s, "synaptic current decay and membrane response", test_synaptic_response) ||
        !CU_add_test(s, "exact propagators", test_consts) ||
        !CU_add_test(s, "refractory queue kernels = a plain counter-based step, bit for bit", test_refractory_queue) ||
        !CU_add_test(s, "poisson rate", test_poisson_rate) ||
        !CU_add_test(s, "poisson loops = sm_philox and sm_u01, bit for bit", test_poisson_bits))
        return -1;
    return 0;
}
