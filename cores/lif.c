/* cores/lif.c: leaky integrate-and-fire neurons with current-based exponential synapses and their variants,
 * integrated exactly per step; Poisson sources and spike sources that replay a list. */
#include <float.h>
#include <math.h>

#include "spikemesh/core.h"

/* The PSP factor of a membrane far faster than the step (rate a, synapse rate b, pb = exp(-b dt), pm =
 * exp(-a dt) underflowed): the integral a (pb - pm) / (a - b), or its a == b limit pm a dt. */
static double sm__psp_fallback(double a, double b, double pb, double pm, double dt)
{
    return a == b ? pm * (a * dt) : a * (pb - pm) / (a - b);
}

int sm_lif_consts(const sm_lif_params_t *p, double dt, sm_lif_consts_t *c, sm_errbuf_t *eb)
{
    if (!(dt > 0.0) || !isfinite(dt))
        return sm_errorf(eb, SM_EINVAL, "dt must be a positive number of ms");
    if (!(p->tau_m > 0.0) || !isfinite(p->tau_m) || !(p->tau_e > 0.0) || !isfinite(p->tau_e) ||
        !(p->tau_i > 0.0) || !isfinite(p->tau_i))
        return sm_errorf(eb, SM_EINVAL, "time constants must be positive and finite");
    if (!(p->t_ref >= 0.0) || !isfinite(p->t_ref))
        return sm_errorf(eb, SM_EINVAL, "refractory period must be zero or positive");
    if (!isfinite(p->v_thresh) || !isfinite(p->v_reset) || !isfinite(p->v_rest) || !isfinite(p->i_bias))
        return sm_errorf(eb, SM_EINVAL, "voltages must be finite");

    double a = 1.0 / p->tau_m;
    c->pm = exp(-dt * a);
    c->pe = exp(-dt / p->tau_e);
    c->pi = exp(-dt / p->tau_i);
    /* v(t+dt) gets g0 * a * integral_0^dt exp(-a (dt - s)) exp(-b s) ds = g0 * pm * a * dt * expm1(x) / x,
     * with x = (a - b) dt; the x -> 0 limit (tau_syn == tau_m) is g0 * pm * a * dt. */
    double b = 1.0 / p->tau_e, x = (a - b) * dt;
    c->ce = c->pm * a * dt * (x == 0.0 ? 1.0 : expm1(x) / x);
    b = 1.0 / p->tau_i;
    x = (a - b) * dt;
    c->ci = c->pm * a * dt * (x == 0.0 ? 1.0 : expm1(x) / x);
    /* a membrane far faster than the step (dt / tau_m beyond ~708): pm underflows (to a subnormal, where the
     * product above loses its precision, then to 0, where expm1(x) / x overflows); the same integral written as
     * a (exp(-b dt) - pm) / (a - b) stays finite and precise */
    if (!isfinite(c->ce) || c->pm < DBL_MIN)
        c->ce = sm__psp_fallback(a, 1.0 / p->tau_e, c->pe, c->pm, dt);
    if (!isfinite(c->ci) || c->pm < DBL_MIN)
        c->ci = sm__psp_fallback(a, 1.0 / p->tau_i, c->pi, c->pm, dt);
    c->v_inf = p->v_rest + p->i_bias;
    if (!isfinite(c->v_inf))
        return sm_errorf(eb, SM_ERANGE, "v_rest_mV + i_bias_mV (%g + %g) is not a finite number", p->v_rest,
                         p->i_bias);
    if (!isfinite(c->ce) || !isfinite(c->ci))
        return sm_errorf(eb, SM_ERANGE, "time constants tau_m %g, tau_e %g, tau_i %g ms against a step of %g ms "
                                        "give propagators that are not finite numbers", p->tau_m, p->tau_e,
                         p->tau_i, dt);
    c->v_thresh = p->v_thresh;
    c->v_reset = p->v_reset;
    /* Same rounding as Brian2's timestep(): a hair above the exact quotient rounds down. */
    double rs = floor(p->t_ref / dt + 1e-3);
    if (rs > 1e9)
        return sm_errorf(eb, SM_ERANGE, "refractory period of %g ms is more than 1e9 steps", p->t_ref);
    c->ref_steps = (int32_t)rs;

    /* The general form (docs/nir.md); for the CUBA model it is the same system, but the CUBA kernel keeps its own
     * arithmetic, so only populations with a variant set use it. */
    c->general = p->delta || p->no_leak || p->no_spike || p->stateless;
    c->prefetch = 0;
    c->spiking = !p->no_spike;
    c->cu = -expm1(-dt * a);
    c->v_base = c->v_inf;
    c->dsyn = 1.0;
    if (!c->general)
        return 0;
    if (p->stateless && !p->delta)
        return sm_errorf(eb, SM_EINVAL, "a stateless neuron must have delta synapses");
    if (p->stateless) {
        c->pm = 0.0;
        c->cu = 1.0;
    } else if (p->no_leak) {
        c->pm = 1.0;
        c->cu = dt * a;
        c->v_base = p->i_bias;
    }
    if (p->delta) {
        /* A weight moves v at the start of the step; the jump then decays with the membrane (or is all there is
         * of v, when stateless). */
        c->ce = c->ci = p->stateless ? 1.0 : c->pm;
        c->pe = c->pi = 0.0;
        c->dsyn = 0.0;
    } else if (p->no_leak) {
        /* v(t+dt) gets g0 * a * integral_0^dt exp(-b s) ds = g0 * a * dt * expm1(x) / x, x = -b dt. */
        x = -dt / p->tau_e;
        c->ce = a * dt * expm1(x) / x;
        x = -dt / p->tau_i;
        c->ci = a * dt * expm1(x) / x;
    }
    return 0;
}

#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__)
/* One binary, the widest vectors the processor has: AVX-512, AVX2 or the x86-64 baseline, chosen at load
 * time. Floating-point contraction is off (-ffp-contract=off), so every version gives the same bits. */
#define SM__CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SM__CLONES
#endif

/* The update kernel, written once and instantiated for double and float state, with and without delay ring
 * buffers. Refractoriness is kept out of the vector loop: the neurons that are refractory wait in a queue
 * (sm_refq_t), in the order they spiked (see SM__LIF_QSTEP), so the loop reads and writes only v, ge and gi and
 * has no branch. A spiking neuron's v is written as +inf by the loop (no other value of v is above threshold and
 * stored) and becomes v_spk when its block of 64 neurons is scanned; a block with no spike is not scanned. */
#define SM__LIF_QLOOP(NAME, T, RING)                                                                           \
    SM__CLONES static uint32_t NAME(const sm_lif_consts_t *c, uint32_t n, T *restrict v, T *restrict ge,        \
                                    T *restrict gi, T *restrict in_e, T *restrict in_i, T v_spk,               \
                                    uint32_t *restrict spk)                                                   \
    {                                                                                                         \
        const T pm = (T)c->pm, pe = (T)c->pe, pi = (T)c->pi, ce = (T)c->ce, ci = (T)c->ci;                    \
        const T v_inf = (T)c->v_inf, v_th = (T)c->v_thresh, up = (T)INFINITY;                                 \
        uint32_t ns = 0;                                                                                      \
        (void)in_e;                                                                                           \
        (void)in_i;                                                                                           \
        for (uint32_t b0 = 0; b0 < n; b0 += 64) {                                                             \
            uint32_t b1 = n - b0 > 64 ? b0 + 64 : n;                                                          \
            int32_t fired = 0;                                                                                \
            for (uint32_t i = b0; i < b1; i++) {                                                              \
                T e = ge[i], g = gi[i];                                                                       \
                if (RING) {                                                                                   \
                    e += in_e[i];                                                                             \
                    g += in_i[i];                                                                             \
                    in_e[i] = 0;                                                                              \
                    in_i[i] = 0;                                                                              \
                }                                                                                             \
                T vo = v[i];                                                                                  \
                T vi = v_inf + (vo - v_inf) * pm + e * ce + g * ci;                                           \
                int32_t s = vi > v_th;                                                                        \
                v[i] = s ? up : vi;                                                                           \
                ge[i] = e * pe;                                                                               \
                gi[i] = g * pi;                                                                               \
                fired |= s;                                                                                   \
            }                                                                                                 \
            if (fired)                                                                                        \
                for (uint32_t i = b0; i < b1; i++)                                                            \
                    if (v[i] == up) {                                                                         \
                        v[i] = v_spk;                                                                         \
                        spk[ns++] = i;                                                                        \
                    }                                                                                         \
        }                                                                                                     \
        return ns;                                                                                            \
    }

SM__LIF_QLOOP(sm__lifq_loop_c, double, 1)
SM__LIF_QLOOP(sm__lifq_loop_direct_c, double, 0)
SM__LIF_QLOOP(sm__lifq_loop_f32_c, float, 1)
SM__LIF_QLOOP(sm__lifq_loop_f32_direct_c, float, 0)

#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__)
#include <immintrin.h>
/* How far ahead (bytes) the vector loops prefetch v, ge and gi when c->prefetch is set. */
#define SM__PREFETCH_AHEAD 640

/* The threshold of vector vi: stores v (v_spk where above threshold) and sets the spike bits k. AVX-512's compare
 * gives a mask register; AVX2's gives a vector, whose sign bits become the spike bits. */
#define SM__LIF_SPIKE512(VT, SFX, MASKT)                                                                      \
    MASKT k = _mm512_cmp_##SFX##_mask(vi, v_th, _CMP_GT_OQ);                                                  \
    _mm512_storeu_##SFX(v + i, _mm512_mask_blend_##SFX(k, vi, v_spk))
#define SM__LIF_SPIKE256(VT, SFX, MASKT)                                                                      \
    VT m = _mm256_cmp_##SFX(vi, v_th, _CMP_GT_OQ);                                                            \
    _mm256_storeu_##SFX(v + i, _mm256_blendv_##SFX(vi, v_spk, m));                                            \
    MASKT k = (MASKT)_mm256_movemask_##SFX(m)

/* One vector of L neurons at i (the body of the loops below), with the intrinsics of PFX (_mm512 or _mm256) and
 * its threshold step SPIKE. */
#define SM__LIF_QVEC(PFX, SPIKE, VT, SFX, MASKT, RING)                                                        \
    do {                                                                                                      \
        VT e = PFX##_loadu_##SFX(ge + i), g = PFX##_loadu_##SFX(gi + i);                                      \
        if (RING) {                                                                                           \
            e = PFX##_add_##SFX(e, PFX##_loadu_##SFX(in_e + i));                                              \
            g = PFX##_add_##SFX(g, PFX##_loadu_##SFX(in_i + i));                                              \
            PFX##_storeu_##SFX(in_e + i, zero);                                                               \
            PFX##_storeu_##SFX(in_i + i, zero);                                                               \
        }                                                                                                     \
        VT vo = PFX##_loadu_##SFX(v + i);                                                                     \
        VT vi = PFX##_add_##SFX(v_inf, PFX##_mul_##SFX(PFX##_sub_##SFX(vo, v_inf), pm));                      \
        vi = PFX##_add_##SFX(vi, PFX##_mul_##SFX(e, ce));                                                     \
        vi = PFX##_add_##SFX(vi, PFX##_mul_##SFX(g, ci));                                                     \
        SPIKE(VT, SFX, MASKT);                                                                                \
        PFX##_storeu_##SFX(ge + i, PFX##_mul_##SFX(e, pe));                                                   \
        PFX##_storeu_##SFX(gi + i, PFX##_mul_##SFX(g, pi));                                                   \
        if (__builtin_expect(k != 0, 0))                                                                      \
            for (uint32_t b = k; b; b &= b - 1u)                                                              \
                spk[ns++] = i + (uint32_t)__builtin_ctz(b);                                                   \
    } while (0)

/* The loop in AVX-512 or AVX2 by hand (TGT, PFX, SPIKE): the compare gives the spikes directly (no sentinel, no
 * second pass over a block), and the same operations in the same order as the C loop keep the same bits. L:
 * lanes; the neurons before v's first 64-byte boundary (a range of neurons of a worker or population starts
 * anywhere) and the tail are left to the C loop. With c->prefetch (and no delay buffers), a second copy of the
 * loop also prefetches each array SM__PREFETCH_AHEAD bytes ahead, a line per 64 bytes of neurons. */
#define SM__LIF_QLOOPV(NAME, TGT, PFX, SPIKE, T, L, VT, SFX, MASKT, RING)                                     \
    __attribute__((target(TGT))) static uint32_t NAME(const sm_lif_consts_t *c, uint32_t n, T *restrict v,     \
                                                      T *restrict ge, T *restrict gi, T *restrict in_e,         \
                                                      T *restrict in_i, T v_spk1, uint32_t *restrict spk)       \
    {                                                                                                         \
        const VT pm = PFX##_set1_##SFX((T)c->pm), pe = PFX##_set1_##SFX((T)c->pe);                            \
        const VT pi = PFX##_set1_##SFX((T)c->pi), ce = PFX##_set1_##SFX((T)c->ce);                            \
        const VT ci = PFX##_set1_##SFX((T)c->ci), v_inf = PFX##_set1_##SFX((T)c->v_inf);                     \
        const VT v_th = PFX##_set1_##SFX((T)c->v_thresh), v_spk = PFX##_set1_##SFX(v_spk1);                   \
        const VT zero = PFX##_setzero_##SFX();                                                                \
        uint32_t ns = 0, i = (uint32_t)((64u - ((uintptr_t)v & 63u)) & 63u) / (uint32_t)sizeof(T);            \
        (void)zero;                                                                                           \
        if (i > n)                                                                                            \
            i = n;                                                                                            \
        if (i > 0) /* up to v's first cache line boundary: vectors that split lines cost two accesses */     \
            ns = NAME##_tail(c, i, v, ge, gi, in_e, in_i, v_spk1, spk);                                       \
        if (c->prefetch && !RING) {                                                                           \
            for (; i + L <= n; i += L) {                                                                      \
                if (L * sizeof(T) == 64 || ((uintptr_t)(v + i) & 63u) == 0) { /* a line per 64 bytes */      \
                    _mm_prefetch((const char *)(v + i) + SM__PREFETCH_AHEAD, _MM_HINT_T0);                    \
                    _mm_prefetch((const char *)(ge + i) + SM__PREFETCH_AHEAD, _MM_HINT_T0);                   \
                    _mm_prefetch((const char *)(gi + i) + SM__PREFETCH_AHEAD, _MM_HINT_T0);                   \
                }                                                                                             \
                SM__LIF_QVEC(PFX, SPIKE, VT, SFX, MASKT, RING);                                               \
            }                                                                                                 \
        } else {                                                                                              \
            for (; i + L <= n; i += L)                                                                        \
                SM__LIF_QVEC(PFX, SPIKE, VT, SFX, MASKT, RING);                                               \
        }                                                                                                     \
        if (i < n) {                                                                                          \
            uint32_t m = NAME##_tail(c, n - i, v + i, ge + i, gi + i, RING ? in_e + i : NULL,                 \
                                     RING ? in_i + i : NULL, v_spk1, spk + ns);                               \
            for (uint32_t k = 0; k < m; k++)                                                                  \
                spk[ns + k] += i;                                                                             \
            ns += m;                                                                                          \
        }                                                                                                     \
        return ns;                                                                                            \
    }

#define SM__LIF_QLOOP512(NAME, T, L, VT, SFX, MASKT, RING)                                                    \
    SM__LIF_QLOOPV(NAME, "avx512f", _mm512, SM__LIF_SPIKE512, T, L, VT, SFX, MASKT, RING)
#define SM__LIF_QLOOP256(NAME, T, L, VT, SFX, RING)                                                           \
    SM__LIF_QLOOPV(NAME, "avx2", _mm256, SM__LIF_SPIKE256, T, L, VT, SFX, uint32_t, RING)

#define sm__lifq_loop_512_tail sm__lifq_loop_c
#define sm__lifq_loop_direct_512_tail sm__lifq_loop_direct_c
#define sm__lifq_loop_f32_512_tail sm__lifq_loop_f32_c
#define sm__lifq_loop_f32_direct_512_tail sm__lifq_loop_f32_direct_c
SM__LIF_QLOOP512(sm__lifq_loop_512, double, 8, __m512d, pd, __mmask8, 1)
SM__LIF_QLOOP512(sm__lifq_loop_direct_512, double, 8, __m512d, pd, __mmask8, 0)
SM__LIF_QLOOP512(sm__lifq_loop_f32_512, float, 16, __m512, ps, __mmask16, 1)
SM__LIF_QLOOP512(sm__lifq_loop_f32_direct_512, float, 16, __m512, ps, __mmask16, 0)
#define sm__lifq_loop_256_tail sm__lifq_loop_c
#define sm__lifq_loop_direct_256_tail sm__lifq_loop_direct_c
#define sm__lifq_loop_f32_256_tail sm__lifq_loop_f32_c
#define sm__lifq_loop_f32_direct_256_tail sm__lifq_loop_f32_direct_c
SM__LIF_QLOOP256(sm__lifq_loop_256, double, 4, __m256d, pd, 1)
SM__LIF_QLOOP256(sm__lifq_loop_direct_256, double, 4, __m256d, pd, 0)
SM__LIF_QLOOP256(sm__lifq_loop_f32_256, float, 8, __m256, ps, 1)
SM__LIF_QLOOP256(sm__lifq_loop_f32_direct_256, float, 8, __m256, ps, 0)

/* The widest vector loop this CPU runs: 2 AVX-512, 1 AVX2, 0 the C loop; at most sm_core_simd_limit's level. */
static int sm__simd_limit = 2;
static int sm__simd(void)
{
    static int have = -1; /* worker threads may all ask at once: relaxed atomics, every one stores the same */
    int h = __atomic_load_n(&have, __ATOMIC_RELAXED);
    if (h < 0) {
        h = __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("avx2") ? 1 : 0;
        __atomic_store_n(&have, h, __ATOMIC_RELAXED);
    }
    int lim = __atomic_load_n(&sm__simd_limit, __ATOMIC_RELAXED);
    return h < lim ? h : lim;
}
#define SM__QLOOP(NAME, LEVEL) ((LEVEL) == 2 ? NAME##_512 : (LEVEL) == 1 ? NAME##_256 : NAME##_c)
#else
static int sm__simd_limit = 2;
static int sm__simd(void) { return 0; }
#define SM__QLOOP(NAME, LEVEL) ((void)(LEVEL), NAME##_c)
#endif

const char *sm_core_simd(void)
{
    static const char *const names[3] = {"c", "avx2", "avx512"};
    return names[sm__simd()];
}

int sm_core_simd_limit(int level)
{
    level = level < 0 ? 0 : level > 2 ? 2 : level;
    return __atomic_exchange_n(&sm__simd_limit, level, __ATOMIC_RELAXED);
}

/* Around the loop: the queue. A neuron that spikes in step t is refractory (held at v_reset) in steps t + 1 ..
 * t + ref_steps - 1 and free again in step t + ref_steps, as with the counter of sm_core_lifx_step. While it is
 * refractory its v holds -inf, which the loop carries along untouched (-inf, or NaN when pm is 0, is never above
 * threshold): the queue touches a neuron twice a spike, when it spikes (the loop writes -inf) and when it is free
 * again (v_reset is written back), not once a step. */
#define SM__LIF_QSTEP(NAME, LOOP, T)                                                                           \
    uint32_t NAME(const sm_lif_consts_t *c, uint32_t n, T *restrict v, T *restrict ge, T *restrict gi,          \
                  T *restrict in_e, T *restrict in_i, sm_refq_t *q, uint64_t step, uint32_t base,              \
                  uint32_t *restrict spikes)                                                                  \
    {                                                                                                         \
        const T v_reset = (T)c->v_reset;                                                                      \
        const uint32_t now = (uint32_t)step, rs = c->ref_steps > 0 ? (uint32_t)c->ref_steps : 0;              \
        while (q->len > 0 && (int32_t)(q->until[q->head] - now) <= 0) {                                      \
            v[q->idx[q->head]] = v_reset;                                                                     \
            q->head = q->head + 1 == q->cap ? 0 : q->head + 1;                                                \
            q->len--;                                                                                         \
        }                                                                                                     \
        const int level = sm__simd(); /* read once: another thread may change the limit */                 \
        uint32_t ns = SM__QLOOP(LOOP, level)(c, n, v, ge, gi, in_e, in_i, rs >= 2 ? (T)-INFINITY : v_reset, spikes); \
        for (uint32_t k = 0; k < ns; k++) {                                                                   \
            if (rs >= 2 && q->len < q->cap) { /* never full: a neuron is queued at most once */              \
                uint32_t j = q->head + q->len;                                                                \
                j = j >= q->cap ? j - q->cap : j;                                                             \
                q->idx[j] = spikes[k];                                                                        \
                q->until[j] = now + rs;                                                                       \
                q->len++;                                                                                     \
            }                                                                                                 \
            spikes[k] += base;                                                                                \
        }                                                                                                     \
        return ns;                                                                                            \
    }

SM__LIF_QSTEP(sm_core_lifq_step, sm__lifq_loop, double)
SM__LIF_QSTEP(sm_core_lifq_step_direct, sm__lifq_loop_direct, double)
SM__LIF_QSTEP(sm_core_lifq_step_f32, sm__lifq_loop_f32, float)
SM__LIF_QSTEP(sm_core_lifq_step_f32_direct, sm__lifq_loop_f32_direct, float)

/* The general form of the step (variants: delta synapses, no leak, no spike, stateless, per-neuron drive); same
 * structure as the CUBA kernel above. */
#define SM__LIFX_KERNEL(NAME, T, RING)                                                                         \
    SM__CLONES uint32_t NAME(const sm_lif_consts_t *c, const double *restrict drive, uint32_t n, T *restrict v, \
                             T *restrict ge, T *restrict gi, int32_t *restrict ref, T *restrict in_e,          \
                             T *restrict in_i, uint32_t base, uint32_t *restrict spikes)                       \
    {                                                                                                         \
        const T pm = (T)c->pm, pe = (T)c->pe, pi = (T)c->pi, ce = (T)c->ce, ci = (T)c->ci, cu = (T)c->cu;     \
        const T vb = (T)c->v_base, ds = (T)c->dsyn, v_th = (T)c->v_thresh, v_reset = (T)c->v_reset;           \
        const int32_t mark = c->ref_steps + 1, spiking = c->spiking != 0;                                     \
        uint32_t ns = 0;                                                                                      \
        (void)in_e;                                                                                           \
        (void)in_i;                                                                                           \
        for (uint32_t b0 = 0; b0 < n; b0 += 64) {                                                             \
            uint32_t b1 = n - b0 > 64 ? b0 + 64 : n;                                                          \
            int32_t fired = 0;                                                                                \
            for (uint32_t i = b0; i < b1; i++) {                                                              \
                T e = ge[i], g = gi[i];                                                                       \
                if (RING) {                                                                                   \
                    e += in_e[i];                                                                             \
                    g += in_i[i];                                                                             \
                    in_e[i] = 0;                                                                              \
                    in_i[i] = 0;                                                                              \
                }                                                                                             \
                T dr = drive ? (T)drive[i] : (T)0;                                                            \
                T h = e - ds * dr;                                                                            \
                int32_t q = ref[i];                                                                           \
                q = q > 0 ? q - 1 : 0;                                                                        \
                T vo = v[i];                                                                                  \
                T vi = pm * vo + cu * (vb + dr) + ce * h + ci * g;                                            \
                int32_t free_ = q <= 1;                                                                       \
                T vn = free_ ? vi : vo;                                                                       \
                int32_t s = spiking & free_ & (vn > v_th);                                                    \
                v[i] = s ? v_reset : vn;                                                                      \
                ref[i] = s ? mark : q;                                                                        \
                ge[i] = ds * dr + pe * h;                                                                     \
                gi[i] = g * pi;                                                                               \
                fired |= s;                                                                                   \
            }                                                                                                 \
            if (fired)                                                                                        \
                for (uint32_t i = b0; i < b1; i++)                                                            \
                    if (ref[i] == mark)                                                                       \
                        spikes[ns++] = base + i;                                                              \
        }                                                                                                     \
        return ns;                                                                                            \
    }

SM__LIFX_KERNEL(sm_core_lifx_step, double, 1)
SM__LIFX_KERNEL(sm_core_lifx_step_direct, double, 0)
SM__LIFX_KERNEL(sm_core_lifx_step_f32, float, 1)
SM__LIFX_KERNEL(sm_core_lifx_step_f32_direct, float, 0)

uint32_t sm_core_source_step(const sm_input_spike_t *ev, uint64_t nev, uint64_t step, uint32_t lo, uint32_t n,
                             uint32_t base, uint32_t *restrict spikes)
{
    uint64_t a = 0, b = nev;
    uint32_t ns = 0;
    while (a < b) { /* the first spike at (step, lo) or later */
        uint64_t m = a + (b - a) / 2;
        if (ev[m].step < step || (ev[m].step == step && ev[m].neuron < lo))
            a = m + 1;
        else
            b = m;
    }
    for (; a < nev && ev[a].step == step && ev[a].neuron - lo < n; a++) {
        uint32_t id = base + (ev[a].neuron - lo);
        if (ns == 0 || spikes[ns - 1] != id) /* a neuron spikes at most once per step */
            spikes[ns++] = id;
    }
    return ns;
}

/* Poisson sources: neuron base + i spikes at `step` when the first two words (x0, x1) of Philox4x32-10 on the
 * counter (SM_STREAM_POISSON, base + i, step low, step high) under the key seed give sm_u01(x0, x1) < p_spike, as
 * sm_philox (cores/rng.c) computes them. The comparison is made on integers: sm_u01's 53 bits are
 * x = x0 2^21 + (x1 >> 11), exactly representable, so x / 2^53 < p exactly when x < below = ceil(p 2^53), that is
 * when x0 < below >> 21, or x0 equals it and (x1 >> 11) < below mod 2^21. The vector loops run the generator on
 * 16 (AVX-512) or 8 (AVX2) neurons at once; tests/test_lif.c compares every loop with sm_philox. */
#define SM__PHILOX_M0 0xD2511F53u
#define SM__PHILOX_M1 0xCD9E8D57u
#define SM__PHILOX_W0 0x9E3779B9u
#define SM__PHILOX_W1 0xBB67AE85u

static uint32_t sm__poisson_c(uint32_t bh, uint32_t bl, uint64_t seed, uint32_t n, uint32_t base, uint64_t step,
                              uint32_t *restrict spikes)
{
    uint32_t ns = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t r[4];
        sm_philox(seed, SM_STREAM_POISSON, base + i, (uint32_t)step, (uint32_t)(step >> 32), r);
        if (r[0] < bh || (r[0] == bh && (r[1] >> 11) < bl))
            spikes[ns++] = base + i;
    }
    return ns;
}

#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__)
/* (hi, lo) of m times each 32-bit lane of x: the even lanes' products, then the odd lanes' */
#define SM__MULHILO(PFX, BLEND, x, m, hi, lo)                                                                  \
    do {                                                                                                      \
        const __typeof__(x) pe_ = PFX##_mul_epu32((x), (m)), po_ = PFX##_mul_epu32(PFX##_srli_epi64((x), 32), (m)); \
        (lo) = BLEND(pe_, PFX##_slli_epi64(po_, 32));                                                         \
        (hi) = BLEND(PFX##_srli_epi64(pe_, 32), po_);                                                         \
    } while (0)
#define SM__BLEND512(a, b) _mm512_mask_blend_epi32((__mmask16)0xAAAA, (a), (b))
#define SM__BLEND256(a, b) _mm256_blend_epi32((a), (b), 0xAA)
/* Philox4x32-10 on the counters (SM_STREAM_POISSON, first + lane, step low, step high) of every lane, key seed:
 * out0, out1 get the first two words. T is the vector type, PFX and SI name its intrinsics (_mm512 / si512);
 * m0 and m1 hold the multipliers in every 64-bit lane. */
#define SM__PHILOX_VEC(T, PFX, SI, BLEND, m0_, m1_, lane, first, step, seed, out0, out1)                        \
    do {                                                                                                      \
        T x0_ = PFX##_set1_epi32(SM_STREAM_POISSON), x1_ = PFX##_add_epi32(PFX##_set1_epi32((int)(first)), (lane)); \
        T x2_ = PFX##_set1_epi32((int)(uint32_t)(step)), x3_ = PFX##_set1_epi32((int)(uint32_t)((step) >> 32));  \
        uint32_t ka_ = (uint32_t)(seed), kb_ = (uint32_t)((seed) >> 32);                                      \
        for (int r_ = 0; r_ < 10; r_++, ka_ += SM__PHILOX_W0, kb_ += SM__PHILOX_W1) {                         \
            T hi0_, lo0_, hi1_, lo1_;                                                                         \
            SM__MULHILO(PFX, BLEND, x0_, m0_, hi0_, lo0_);                                                    \
            SM__MULHILO(PFX, BLEND, x2_, m1_, hi1_, lo1_);                                                    \
            x0_ = PFX##_xor_##SI(PFX##_xor_##SI(hi1_, x1_), PFX##_set1_epi32((int)ka_));                      \
            x1_ = lo1_;                                                                                       \
            x2_ = PFX##_xor_##SI(PFX##_xor_##SI(hi0_, x3_), PFX##_set1_epi32((int)kb_));                      \
            x3_ = lo0_;                                                                                       \
        }                                                                                                     \
        (out0) = x0_;                                                                                         \
        (out1) = x1_;                                                                                         \
    } while (0)

__attribute__((target("avx512f"))) static uint32_t sm__poisson_512(uint32_t bh, uint32_t bl, uint64_t seed,
                                                                    uint32_t n, uint32_t base, uint64_t step,
                                                                    uint32_t *restrict spikes)
{
    const __m512i m0 = _mm512_set1_epi64(SM__PHILOX_M0), m1 = _mm512_set1_epi64(SM__PHILOX_M1);
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i vbh = _mm512_set1_epi32((int)bh), vbl = _mm512_set1_epi32((int)bl);
    uint32_t ns = 0;
    for (uint32_t i0 = 0; i0 < n; i0 += 16) {
        __m512i x0, x1;
        SM__PHILOX_VEC(__m512i, _mm512, si512, SM__BLEND512, m0, m1, lane, base + i0, step, seed, x0, x1);
        __mmask16 hit = _mm512_cmplt_epu32_mask(x0, vbh) |
                        (_mm512_cmpeq_epu32_mask(x0, vbh) & _mm512_cmplt_epu32_mask(_mm512_srli_epi32(x1, 11), vbl));
        if (n - i0 < 16)
            hit &= (__mmask16)((1u << (n - i0)) - 1u);
        for (uint32_t h = hit; h; h &= h - 1)
            spikes[ns++] = base + i0 + (uint32_t)__builtin_ctz(h);
    }
    return ns;
}

__attribute__((target("avx2"))) static uint32_t sm__poisson_256(uint32_t bh, uint32_t bl, uint64_t seed, uint32_t n,
                                                                 uint32_t base, uint64_t step,
                                                                 uint32_t *restrict spikes)
{
    const __m256i m0 = _mm256_set1_epi64x(SM__PHILOX_M0), m1 = _mm256_set1_epi64x(SM__PHILOX_M1);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), sign = _mm256_set1_epi32(INT32_MIN);
    /* unsigned compares as signed ones on values with the top bit flipped */
    const __m256i vbh = _mm256_set1_epi32((int)(bh ^ 0x80000000u)), vbl = _mm256_set1_epi32((int)bl);
    uint32_t ns = 0;
    for (uint32_t i0 = 0; i0 < n; i0 += 8) {
        __m256i x0, x1;
        SM__PHILOX_VEC(__m256i, _mm256, si256, SM__BLEND256, m0, m1, lane, base + i0, step, seed, x0, x1);
        const __m256i sx0 = _mm256_xor_si256(x0, sign);
        /* x1 >> 11 < 2^21: a signed compare is an unsigned one */
        __m256i hit = _mm256_or_si256(
            _mm256_cmpgt_epi32(vbh, sx0),
            _mm256_and_si256(_mm256_cmpeq_epi32(vbh, sx0), _mm256_cmpgt_epi32(vbl, _mm256_srli_epi32(x1, 11))));
        uint32_t h = (uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(hit));
        if (n - i0 < 8)
            h &= (1u << (n - i0)) - 1u;
        for (; h; h &= h - 1)
            spikes[ns++] = base + i0 + (uint32_t)__builtin_ctz(h);
    }
    return ns;
}
#endif

uint32_t sm_core_poisson_step(double p_spike, uint64_t seed, uint32_t n, uint32_t base, uint64_t step,
                              uint32_t *restrict spikes)
{
    if (!(p_spike > 0.0))
        return 0;
    if (p_spike >= 1.0) { /* every x < 2^53 */
        for (uint32_t i = 0; i < n; i++)
            spikes[i] = base + i;
        return n;
    }
    const uint64_t below = (uint64_t)ceil(p_spike * 9007199254740992.0); /* at most 2^53 */
    const uint32_t bh = (uint32_t)(below >> 21), bl = (uint32_t)(below & ((1u << 21) - 1u));
    if (below >> 53) /* p within an ulp of 1: every x */
        return sm_core_poisson_step(1.0, seed, n, base, step, spikes);
    return SM__QLOOP(sm__poisson, sm__simd())(bh, bl, seed, n, base, step, spikes);
}
