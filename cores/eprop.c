/* cores/eprop.c: e-prop learning (Bellec et al. 2020) in a core: recurrent LIF and ALIF neurons, leaky readouts,
 * eligibility traces beside the weights, learning signals, gradients, SGD and Adam, fixed-point traces and weights. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "spikemesh/learn.h"

void sm_eprop_params_default(sm_eprop_params_t *p)
{
    memset(p, 0, sizeof *p);
    p->dt = 1.0;
    p->tau_m = 20.0;
    p->tau_a = 2000.0;
    p->tau_out = 20.0;
    p->v_th = 0.6;
    p->beta = 1.8;
    p->gamma = 0.3;
    p->n_ref = 5;
    p->loss = SM_EPROP_REGRESSION;
    p->feedback = SM_EPROP_FB_SYMMETRIC;
    p->f_target_hz = 10.0;
    p->w_in_scale = 1.0;
    p->w_rec_scale = 1.0;
    p->w_out_scale = 1.0;
    p->trace_range = 4.0;
    p->weight_range = 4.0;
}

static int sm__pos(double x)
{
    return x > 0.0 && isfinite(x);
}

int sm_eprop_params_check(const sm_eprop_params_t *p, sm_errbuf_t *eb)
{
    if (p->n_in < 1 || p->n_rec < 1 || p->n_out < 1 || p->n_in > (1u << 20) || p->n_rec > (1u << 16) ||
        p->n_out > 1024)
        return sm_errorf(eb, SM_EINVAL, "eprop: sizes: need 1..2^20 inputs, 1..65536 recurrent neurons and 1..1024 "
                         "readouts, got %u, %u, %u", p->n_in, p->n_rec, p->n_out);
    if (p->n_alif > p->n_rec)
        return sm_errorf(eb, SM_EINVAL, "eprop: n_alif: %u ALIF neurons is more than the %u recurrent neurons",
                         p->n_alif, p->n_rec);
    if (!sm__pos(p->dt) || !sm__pos(p->tau_m) || !sm__pos(p->tau_a) || !sm__pos(p->tau_out))
        return sm_errorf(eb, SM_EINVAL, "eprop: dt_ms, tau_m_ms, tau_a_ms, tau_out_ms: must be positive and finite");
    if (!sm__pos(p->v_th))
        return sm_errorf(eb, SM_EINVAL, "eprop: v_th_mV: must be positive and finite, got %g", p->v_th);
    if (!(p->beta >= 0.0) || !isfinite(p->beta) || !(p->gamma >= 0.0) || !isfinite(p->gamma))
        return sm_errorf(eb, SM_EINVAL, "eprop: beta, gamma: must be zero or positive and finite");
    if (!(p->c_reg >= 0.0) || !isfinite(p->c_reg) || !(p->f_target_hz >= 0.0) || !isfinite(p->f_target_hz))
        return sm_errorf(eb, SM_EINVAL, "eprop: c_reg, f_target_hz: must be zero or positive and finite");
    if (!isfinite(p->w_in_scale) || !isfinite(p->w_rec_scale) || !isfinite(p->w_out_scale))
        return sm_errorf(eb, SM_EINVAL, "eprop: weight scales: must be finite");
    if (p->trace_bits == 1 || p->trace_bits > 32 || p->weight_bits == 1 || p->weight_bits > 32)
        return sm_errorf(eb, SM_EINVAL, "eprop: trace_bits, weight_bits: must be 0 (float) or 2..32, got %u, %u",
                         p->trace_bits, p->weight_bits);
    if ((p->trace_bits && !sm__pos(p->trace_range)) || (p->weight_bits && !sm__pos(p->weight_range)))
        return sm_errorf(eb, SM_EINVAL, "eprop: trace_range, weight_range: must be positive in fixed-point mode");
    return 0;
}

uint64_t sm_eprop_nsyn(const sm_eprop_params_t *p)
{
    return (uint64_t)p->n_rec * (p->n_in + p->n_rec - 1u) + (uint64_t)p->n_out * p->n_rec;
}

/* A standard normal from two 32-bit words (Box-Muller, cosine branch). */
static double sm__normal(uint32_t w0, uint32_t w1, uint32_t w2, uint32_t w3)
{
    double u1 = 1.0 - sm_u01(w0, w1), u2 = sm_u01(w2, w3); /* u1 in (0, 1] */
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static void sm__fill_normal(double *w, uint32_t rows, uint32_t cols, double scale, uint64_t seed, uint32_t which)
{
    for (uint32_t r = 0; r < rows; r++)
        for (uint32_t c = 0; c < cols; c++) {
            uint32_t o[4];
            sm_philox(seed, SM_STREAM_EPROP_INIT, which, r, c, o);
            w[(uint64_t)r * cols + c] = scale * sm__normal(o[0], o[1], o[2], o[3]);
        }
}

int sm_eprop_net_init(sm_eprop_net_t *net, const sm_eprop_params_t *p, uint64_t seed, sm_errbuf_t *eb)
{
    int rc;
    memset(net, 0, sizeof *net);
    if ((rc = sm_eprop_params_check(p, eb)) != 0)
        return rc;
    net->p = *p;
    net->seed = seed;
    uint64_t ni = p->n_in, nr = p->n_rec, no = p->n_out;
    net->w_in = malloc(nr * ni * sizeof *net->w_in);
    net->w_rec = malloc(nr * nr * sizeof *net->w_rec);
    net->w_out = malloc(no * nr * sizeof *net->w_out);
    net->b_out = calloc(no, sizeof *net->b_out);
    net->fb = malloc(nr * no * sizeof *net->fb);
    if (!net->w_in || !net->w_rec || !net->w_out || !net->b_out || !net->fb) {
        sm_eprop_net_free(net);
        return sm_errorf(eb, SM_ENOMEM, "eprop: out of memory for the weights of %u x %u neurons", p->n_rec,
                         p->n_in + p->n_rec);
    }
    sm__fill_normal(net->w_in, p->n_rec, p->n_in, p->w_in_scale / sqrt((double)ni), seed, 0);
    sm__fill_normal(net->w_rec, p->n_rec, p->n_rec, p->w_rec_scale / sqrt((double)nr), seed, 1);
    for (uint64_t j = 0; j < nr; j++)
        net->w_rec[j * nr + j] = 0.0;
    sm__fill_normal(net->w_out, p->n_out, p->n_rec, p->w_out_scale / sqrt((double)nr), seed, 2);
    sm__fill_normal(net->fb, p->n_rec, p->n_out, 1.0 / sqrt((double)nr), seed, 3);
    return 0;
}

void sm_eprop_net_free(sm_eprop_net_t *net)
{
    free(net->w_in);
    free(net->w_rec);
    free(net->w_out);
    free(net->b_out);
    free(net->fb);
    memset(net, 0, sizeof *net);
}

uint64_t sm_eprop_trace_bytes(const sm_eprop_params_t *p, uint32_t neuron)
{
    uint64_t bits = p->trace_bits ? p->trace_bits : 32u;
    uint64_t nsyn = (uint64_t)p->n_in + p->n_rec - 1u;
    int alif = neuron >= p->n_rec - p->n_alif;
    /* ebar and the gradient accumulator per synapse, eps per synapse of an ALIF neuron. The presynaptic traces
     * zbar are shared by the core's neurons and charged to the core, not to one neuron. */
    uint64_t words = nsyn * (alif ? 3u : 2u);
    return (words * bits + 7u) / 8u;
}

/* ---- gradients ---- */

int sm_eprop_grad_alloc(sm_eprop_grad_t *g, const sm_eprop_params_t *p)
{
    uint64_t ni = p->n_in, nr = p->n_rec, no = p->n_out;
    memset(g, 0, sizeof *g);
    g->g_in = calloc(nr * ni, sizeof(double));
    g->g_rec = calloc(nr * nr, sizeof(double));
    g->g_out = calloc(no * nr, sizeof(double));
    g->g_b = calloc(no, sizeof(double));
    g->esum_in = calloc(nr * ni, sizeof(double));
    g->esum_rec = calloc(nr * nr, sizeof(double));
    g->spikes = calloc(nr, sizeof(double));
    if (!g->g_in || !g->g_rec || !g->g_out || !g->g_b || !g->esum_in || !g->esum_rec || !g->spikes) {
        sm_eprop_grad_free(g);
        return SM_ENOMEM;
    }
    return 0;
}

void sm_eprop_grad_zero(sm_eprop_grad_t *g, const sm_eprop_params_t *p)
{
    uint64_t ni = p->n_in, nr = p->n_rec, no = p->n_out;
    memset(g->g_in, 0, nr * ni * sizeof(double));
    memset(g->g_rec, 0, nr * nr * sizeof(double));
    memset(g->g_out, 0, no * nr * sizeof(double));
    memset(g->g_b, 0, no * sizeof(double));
    memset(g->esum_in, 0, nr * ni * sizeof(double));
    memset(g->esum_rec, 0, nr * nr * sizeof(double));
    memset(g->spikes, 0, nr * sizeof(double));
    g->loss = g->correct = g->trials = 0.0;
    memset(&g->ops, 0, sizeof g->ops);
}

void sm_eprop_grad_free(sm_eprop_grad_t *g)
{
    free(g->g_in);
    free(g->g_rec);
    free(g->g_out);
    free(g->g_b);
    free(g->esum_in);
    free(g->esum_rec);
    free(g->spikes);
    memset(g, 0, sizeof *g);
}

static void sm__vadd(double *restrict d, const double *restrict s, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        d[i] += s[i];
}

void sm_eprop_grad_add(sm_eprop_grad_t *dst, const sm_eprop_grad_t *src, const sm_eprop_params_t *p)
{
    uint64_t ni = p->n_in, nr = p->n_rec, no = p->n_out;
    sm__vadd(dst->g_in, src->g_in, nr * ni);
    sm__vadd(dst->g_rec, src->g_rec, nr * nr);
    sm__vadd(dst->g_out, src->g_out, no * nr);
    sm__vadd(dst->g_b, src->g_b, no);
    if (p->c_reg > 0.0) {
        sm__vadd(dst->esum_in, src->esum_in, nr * ni);
        sm__vadd(dst->esum_rec, src->esum_rec, nr * nr);
    }
    sm__vadd(dst->spikes, src->spikes, nr);
    dst->loss += src->loss;
    dst->correct += src->correct;
    dst->trials += src->trials;
    dst->ops.trace_updates += src->ops.trace_updates;
    dst->ops.weight_updates += src->ops.weight_updates;
    dst->ops.learning_packets += src->ops.learning_packets;
    dst->ops.neuron_updates += src->ops.neuron_updates;
    dst->ops.spikes += src->ops.spikes;
}

void sm_eprop_grad_finish(sm_eprop_grad_t *g, const sm_eprop_params_t *p, uint32_t nsteps)
{
    uint64_t ni = p->n_in, nr = p->n_rec, no = p->n_out;
    double nb = g->trials > 0 ? g->trials : 1.0, inv = 1.0 / nb;
    for (uint64_t k = 0; k < nr * ni; k++)
        g->g_in[k] *= inv;
    for (uint64_t k = 0; k < nr * nr; k++)
        g->g_rec[k] *= inv;
    for (uint64_t k = 0; k < no * nr; k++)
        g->g_out[k] *= inv;
    for (uint64_t k = 0; k < no; k++)
        g->g_b[k] *= inv;
    if (p->c_reg > 0.0 && nsteps > 0) {
        /* E_reg = c_reg / 2 sum_j (fbar_j - f_target)^2, fbar_j the batch's mean spikes per step of neuron j:
         * dE_reg/dW_ji = c_reg (fbar_j - f_target) (1 / (B T)) sum_b sum_t e_ji,t. */
        double ft = p->f_target_hz * p->dt * 1e-3, T = (double)nsteps;
        for (uint64_t j = 0; j < nr; j++) {
            double c = p->c_reg * (g->spikes[j] * inv / T - ft) * inv / T;
            for (uint64_t i = 0; i < ni; i++)
                g->g_in[j * ni + i] += c * g->esum_in[j * ni + i];
            for (uint64_t i = 0; i < nr; i++)
                if (i != j)
                    g->g_rec[j * nr + i] += c * g->esum_rec[j * nr + i];
        }
    }
}

/* ---- the trial ---- */

struct sm_eprop_work {
    uint32_t np;                    /* presynaptic neurons of a row: n_in + n_rec */
    double *v, *a, *z, *zp, *psi, *psip, *cur, *learn, *zk;
    int32_t *ref;
    double *zb, *zbp;               /* [np]: presynaptic traces now and one step before */
    double *ebar;                   /* [n_rec * np] */
    double *eps;                    /* [n_alif * np] */
    double *gc, *ec;                /* [n_rec * np]: gradient and eligibility sums, row-contiguous */
    double *y, *err;                /* [n_out] */
    double *ysum;                   /* [n_out] */
};

sm_eprop_work_t *sm_eprop_work_new(const sm_eprop_params_t *p)
{
    sm_eprop_work_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    uint64_t nr = p->n_rec, np = (uint64_t)p->n_in + p->n_rec, no = p->n_out;
    w->np = (uint32_t)np;
    double **vecs[] = {&w->v, &w->a, &w->z, &w->zp, &w->psi, &w->psip, &w->cur, &w->learn, &w->zk};
    int bad = 0;
    for (size_t k = 0; k < sizeof vecs / sizeof vecs[0]; k++)
        bad |= !(*vecs[k] = calloc(nr, sizeof(double)));
    w->ref = calloc(nr, sizeof *w->ref);
    w->zb = calloc(np, sizeof(double));
    w->zbp = calloc(np, sizeof(double));
    w->ebar = calloc(nr * np, sizeof(double));
    w->eps = calloc((p->n_alif ? p->n_alif : 1u) * np, sizeof(double));
    w->gc = calloc(nr * np, sizeof(double));
    w->ec = calloc(nr * np, sizeof(double));
    w->y = calloc(no, sizeof(double));
    w->err = calloc(no, sizeof(double));
    w->ysum = calloc(no, sizeof(double));
    if (bad || !w->ref || !w->zb || !w->zbp || !w->ebar || !w->eps || !w->gc || !w->ec || !w->y || !w->err ||
        !w->ysum) {
        sm_eprop_work_free(w);
        return NULL;
    }
    return w;
}

void sm_eprop_work_free(sm_eprop_work_t *w)
{
    if (!w)
        return;
    free(w->v);
    free(w->a);
    free(w->z);
    free(w->zp);
    free(w->psi);
    free(w->psip);
    free(w->cur);
    free(w->learn);
    free(w->zk);
    free(w->ref);
    free(w->zb);
    free(w->zbp);
    free(w->ebar);
    free(w->eps);
    free(w->gc);
    free(w->ec);
    free(w->y);
    free(w->err);
    free(w->ysum);
    free(w);
}

/* Stochastic rounding of x to a multiple of `step` within qmax steps of 0: rounds up with probability equal to the
 * fraction left over, so the rounded value is x on average. */
static double sm__sround(double x, double step, double qmax, uint32_t word)
{
    double y = x / step, f = floor(y);
    double u = (double)word * (1.0 / 4294967296.0);
    y = f + (u < y - f ? 1.0 : 0.0);
    if (y > qmax)
        y = qmax;
    if (y < -qmax - 1.0)
        y = -qmax - 1.0;
    return y * step;
}

/* Quantizes n values of one trace row; the random words come from (seed, SM_STREAM_EPROP_ROUND, trial, step,
 * (base + i) / 4). */
static void sm__quant_row(double *x, uint32_t n, uint32_t bits, double range, uint64_t seed, uint32_t trial,
                          uint32_t step, uint32_t base)
{
    double qmax = ldexp(1.0, (int)bits - 1) - 1.0, stp = range / (qmax + 1.0);
    uint32_t o[4] = {0, 0, 0, 0};
    for (uint32_t i = 0; i < n; i++) {
        uint32_t c = base + i;
        if (i == 0 || (c & 3u) == 0)
            sm_philox(seed, SM_STREAM_EPROP_ROUND, trial, step, c >> 2, o);
        x[i] = sm__sround(x[i], stp, qmax, o[c & 3u]);
    }
}

#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__)
#define SM__CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SM__CLONES
#endif

/* The trace update of one LIF row (e = psi zbar): ebar = kappa ebar + e; esum += e; the gradient sum gets L ebar. */
SM__CLONES static void sm__row_lif(uint32_t np, double kappa, double ps, double L, int reg, double *restrict eb,
                                   const double *restrict zb, double *restrict gc, double *restrict ec)
{
    if (ps == 0.0) {
        for (uint32_t i = 0; i < np; i++)
            eb[i] *= kappa;
    } else {
        for (uint32_t i = 0; i < np; i++)
            eb[i] = kappa * eb[i] + ps * zb[i];
        if (reg)
            for (uint32_t i = 0; i < np; i++)
                ec[i] += ps * zb[i];
    }
    if (L != 0.0)
        for (uint32_t i = 0; i < np; i++)
            gc[i] += L * eb[i];
}

/* The same for an ALIF row: eps = psi_{t-1} zbar_{t-1} + (rho - beta psi_{t-1}) eps; e = psi (zbar - beta eps). */
SM__CLONES static void sm__row_alif(uint32_t np, double kappa, double ps, double pp, double rho, double beta,
                                    double L, int reg, double *restrict eb, double *restrict ep,
                                    const double *restrict zb, const double *restrict zbp, double *restrict gc,
                                    double *restrict ec)
{
    double c = rho - beta * pp;
    for (uint32_t i = 0; i < np; i++) {
        double e1 = pp * zbp[i] + c * ep[i];
        ep[i] = e1;
        double e = ps * (zb[i] - beta * e1);
        eb[i] = kappa * eb[i] + e;
        if (reg)
            ec[i] += e;
    }
    if (L != 0.0)
        for (uint32_t i = 0; i < np; i++)
            gc[i] += L * eb[i];
}

/* Adds the row-contiguous gradient sums of w into g's weight layout (autapses do not exist). */
static void sm__scatter(const sm_eprop_params_t *p, const sm_eprop_work_t *w, sm_eprop_grad_t *g, int reg)
{
    const uint32_t ni = p->n_in, nr = p->n_rec, np = w->np;
    for (uint32_t j = 0; j < nr; j++) {
        const double *gc = w->gc + (uint64_t)j * np, *ec = w->ec + (uint64_t)j * np;
        sm__vadd(g->g_in + (uint64_t)j * ni, gc, ni);
        for (uint32_t i = 0; i < nr; i++)
            if (i != j)
                g->g_rec[(uint64_t)j * nr + i] += gc[ni + i];
        if (reg) {
            sm__vadd(g->esum_in + (uint64_t)j * ni, ec, ni);
            for (uint32_t i = 0; i < nr; i++)
                if (i != j)
                    g->esum_rec[(uint64_t)j * nr + i] += ec[ni + i];
        }
    }
}

void sm_eprop_trial(const sm_eprop_net_t *net, sm_eprop_work_t *w, const sm_eprop_trial_t *tr, uint32_t trial_id,
                    sm_eprop_grad_t *g, sm_eprop_record_t *rec)
{
    sm_eprop_trial_online(net, w, tr, trial_id, g, rec, 0, NULL, NULL);
}

void sm_eprop_trial_online(const sm_eprop_net_t *net, sm_eprop_work_t *w, const sm_eprop_trial_t *tr,
                           uint32_t trial_id, sm_eprop_grad_t *g, sm_eprop_record_t *rec, uint32_t every,
                           sm_eprop_update_fn fn, void *ctx)
{
    const sm_eprop_params_t *p = &net->p;
    const uint32_t ni = p->n_in, nr = p->n_rec, no = p->n_out, np = w->np, T = tr->nsteps;
    const uint32_t first_alif = nr - p->n_alif;
    const double alpha = exp(-p->dt / p->tau_m), rho = exp(-p->dt / p->tau_a), kappa = exp(-p->dt / p->tau_out);
    const double vth = p->v_th, gpd = p->gamma / p->v_th;
    const int reg = p->c_reg > 0.0;
    const uint32_t tb = p->trace_bits;

    /* A trial starts from rest: every state and trace at 0. */
    memset(w->v, 0, nr * sizeof(double));
    memset(w->a, 0, nr * sizeof(double));
    memset(w->z, 0, nr * sizeof(double));
    memset(w->zp, 0, nr * sizeof(double));
    memset(w->psi, 0, nr * sizeof(double));
    memset(w->psip, 0, nr * sizeof(double));
    memset(w->zk, 0, nr * sizeof(double));
    memset(w->ref, 0, nr * sizeof(int32_t));
    memset(w->zb, 0, np * sizeof(double));
    memset(w->zbp, 0, np * sizeof(double));
    memset(w->ebar, 0, (uint64_t)nr * np * sizeof(double));
    memset(w->eps, 0, (uint64_t)(p->n_alif ? p->n_alif : 1u) * np * sizeof(double));
    memset(w->gc, 0, (uint64_t)nr * np * sizeof(double));
    if (reg)
        memset(w->ec, 0, (uint64_t)nr * np * sizeof(double));
    memset(w->y, 0, no * sizeof(double));
    memset(w->ysum, 0, no * sizeof(double));

    uint32_t tm = 0;
    for (uint32_t t = 0; t < T; t++)
        tm += !tr->mask || tr->mask[t];
    const double inv_tm = tm ? 1.0 / (double)tm : 0.0;
    double bbar = 0.0, loss = 0.0;
    uint64_t spikes = 0, packets = 0;
    int label = -1;
    uint32_t last = 0; /* step of the last online update */

    for (uint32_t t = 0; t < T; t++) {
        const uint8_t *x = tr->x + (uint64_t)t * ni;
        /* Presynaptic traces: zbar_i,t = alpha zbar_i,t-1 + s_i,t, s = x_t for inputs, z_t-1 for recurrent neurons. */
        memcpy(w->zbp, w->zb, np * sizeof(double));
        for (uint32_t i = 0; i < ni; i++)
            w->zb[i] = alpha * w->zb[i] + (double)x[i];
        for (uint32_t i = 0; i < nr; i++)
            w->zb[ni + i] = alpha * w->zb[ni + i] + w->zp[i];
        /* Synaptic input of this step, summed over the presynaptic neurons that spiked. */
        memset(w->cur, 0, nr * sizeof(double));
        for (uint32_t i = 0; i < ni; i++)
            if (x[i])
                for (uint32_t j = 0; j < nr; j++)
                    w->cur[j] += net->w_in[(uint64_t)j * ni + i];
        for (uint32_t i = 0; i < nr; i++)
            if (w->zp[i] != 0.0)
                for (uint32_t j = 0; j < nr; j++)
                    w->cur[j] += net->w_rec[(uint64_t)j * nr + i];
        /* Neurons. */
        for (uint32_t j = 0; j < nr; j++) {
            double beta = j >= first_alif ? p->beta : 0.0;
            double zp = w->zp[j];
            double v = alpha * w->v[j] + w->cur[j] - vth * zp;
            double a = rho * w->a[j] + zp;
            double thr = vth + beta * a;
            double z = 0.0, ps = 0.0;
            if (w->ref[j] > 0) {
                w->ref[j]--;
            } else {
                z = v - thr > 0.0 ? 1.0 : 0.0;
                double d = 1.0 - fabs(v - thr) / vth;
                ps = d > 0.0 ? gpd * d : 0.0;
                if (z != 0.0)
                    w->ref[j] = (int32_t)p->n_ref;
            }
            w->v[j] = v;
            w->a[j] = a;
            w->psip[j] = w->psi[j];
            w->psi[j] = ps;
            w->z[j] = z;
            spikes += z != 0.0;
            if (z != 0.0)
                g->spikes[j] += 1.0;
        }
        /* Readouts and their error dE/dy_t. */
        int on = !tr->mask || tr->mask[t];
        bbar = kappa * bbar + 1.0;
        for (uint32_t j = 0; j < nr; j++)
            w->zk[j] = kappa * w->zk[j] + w->z[j];
        double ymax = -INFINITY;
        for (uint32_t k = 0; k < no; k++) {
            double s = 0.0;
            const double *wo = net->w_out + (uint64_t)k * nr;
            for (uint32_t j = 0; j < nr; j++)
                s += wo[j] * w->z[j];
            w->y[k] = kappa * w->y[k] + s + net->b_out[k];
            if (w->y[k] > ymax)
                ymax = w->y[k];
        }
        const double *ys = tr->target + (uint64_t)t * no;
        if (!on) {
            for (uint32_t k = 0; k < no; k++)
                w->err[k] = 0.0;
        } else if (p->loss == SM_EPROP_REGRESSION) {
            for (uint32_t k = 0; k < no; k++) {
                double d = w->y[k] - ys[k];
                loss += 0.5 * d * d * inv_tm;
                w->err[k] = d * inv_tm;
            }
        } else {
            double zs = 0.0;
            for (uint32_t k = 0; k < no; k++)
                zs += exp(w->y[k] - ymax);
            double lz = log(zs);
            for (uint32_t k = 0; k < no; k++) {
                double lp = w->y[k] - ymax - lz;
                loss -= ys[k] * lp * inv_tm;
                w->err[k] = (exp(lp) - ys[k]) * inv_tm;
                w->ysum[k] += w->y[k];
                if (ys[k] > 0.5)
                    label = (int)k;
            }
        }
        /* Learning signals L_j = sum_k B_jk err_k (sent to the recurrent cores when non-zero). */
        int any = 0;
        for (uint32_t k = 0; k < no; k++)
            any |= w->err[k] != 0.0;
        if (tr->learn) {
            memcpy(w->learn, tr->learn + (uint64_t)t * nr, nr * sizeof(double));
            packets += nr;
        }
        for (uint32_t j = 0; !tr->learn && j < nr; j++) {
            double L = 0.0;
            if (any)
                for (uint32_t k = 0; k < no; k++)
                    L += (p->feedback == SM_EPROP_FB_SYMMETRIC ? net->w_out[(uint64_t)k * nr + j]
                                                               : net->fb[(uint64_t)j * no + k]) * w->err[k];
            w->learn[j] = L;
        }
        if (any) {
            /* One multicast packet per readout, its error err_k as payload, to every recurrent core (each holds
             * the feedback weights B_jk of its neurons and forms L_j itself). */
            packets += tr->learn ? 0u : no;
            for (uint32_t k = 0; k < no; k++) {
                double e = w->err[k];
                double *go = g->g_out + (uint64_t)k * nr;
                for (uint32_t j = 0; j < nr; j++)
                    go[j] += e * w->zk[j];
                g->g_b[k] += e * bbar;
            }
        }
        /* Eligibility traces and gradient sums, row by row (one row is one neuron's synapse block). */
        for (uint32_t j = 0; j < nr; j++) {
            double *eb = w->ebar + (uint64_t)j * np, *gc = w->gc + (uint64_t)j * np, *ec = w->ec + (uint64_t)j * np;
            if (j < first_alif) {
                sm__row_lif(np, kappa, w->psi[j], w->learn[j], reg, eb, w->zb, gc, ec);
            } else {
                double *ep = w->eps + (uint64_t)(j - first_alif) * np;
                sm__row_alif(np, kappa, w->psi[j], w->psip[j], rho, p->beta, w->learn[j], reg, eb, ep, w->zb, w->zbp,
                             gc, ec);
                if (tb)
                    sm__quant_row(ep, np, tb, p->trace_range, net->seed, trial_id, t,
                                  (uint32_t)((uint64_t)(nr + j) * np));
            }
            if (tb)
                sm__quant_row(eb, np, tb, p->trace_range, net->seed, trial_id, t, (uint32_t)((uint64_t)j * np));
        }
        if (rec) {
            uint64_t o = (uint64_t)t * nr, q = (uint64_t)t * no;
            for (uint32_t j = 0; j < nr; j++) {
                if (rec->v)
                    rec->v[o + j] = w->v[j];
                if (rec->a)
                    rec->a[o + j] = w->a[j];
                if (rec->psi)
                    rec->psi[o + j] = w->psi[j];
                if (rec->z)
                    rec->z[o + j] = w->z[j];
                if (rec->learn)
                    rec->learn[o + j] = w->learn[j];
            }
            for (uint32_t k = 0; k < no; k++) {
                if (rec->y)
                    rec->y[q + k] = w->y[k];
                if (rec->err)
                    rec->err[q + k] = w->err[k];
            }
        }
        memcpy(w->zp, w->z, nr * sizeof(double));
        /* Online updates within the trial: hand the sums of the steps since the last update to fn, which applies
         * them to the weights that the next steps read; the traces and the state carry on. */
        if (fn && every && (t + 1) % every == 0 && t + 1 < T) {
            sm__scatter(p, w, g, reg);
            memset(w->gc, 0, (uint64_t)nr * np * sizeof(double));
            if (reg)
                memset(w->ec, 0, (uint64_t)nr * np * sizeof(double));
            fn(ctx, g, t + 1 - last);
            last = t + 1;
        }
    }

    /* Scatter the row-contiguous sums into the gradient's weight layout. */
    sm__scatter(p, w, g, reg);
    if (p->loss == SM_EPROP_CLASSIFICATION && label >= 0) {
        uint32_t best = 0;
        for (uint32_t k = 1; k < no; k++)
            if (w->ysum[k] > w->ysum[best])
                best = k;
        g->correct += best == (uint32_t)label;
    }
    g->loss += loss;
    g->trials += 1.0;
    uint64_t rows = (uint64_t)nr * (np - 1u);
    g->ops.trace_updates += (uint64_t)T * (rows + (uint64_t)p->n_alif * (np - 1u) + (uint64_t)no * nr);
    g->ops.learning_packets += packets;
    g->ops.neuron_updates += (uint64_t)T * (nr + no);
    g->ops.spikes += spikes;
    if (fn)
        fn(ctx, g, T - last);
}

/* ---- batches on threads ---- */

typedef struct {
    const sm_eprop_net_t *net;
    const sm_eprop_trial_t *trials;
    sm_eprop_grad_t *per; /* one gradient per trial */
    uint32_t n, first_id, nthreads, me;
    int fail;
} sm__batch_job_t;

static void sm__batch_worker(void *arg)
{
    sm__batch_job_t *job = arg;
    sm_eprop_work_t *w = sm_eprop_work_new(&job->net->p);
    if (!w) {
        job->fail = 1;
        return;
    }
    for (uint32_t b = job->me; b < job->n; b += job->nthreads)
        sm_eprop_trial(job->net, w, &job->trials[b], job->first_id + b, &job->per[b], NULL);
    sm_eprop_work_free(w);
}

int sm_eprop_batch(const sm_eprop_net_t *net, const sm_eprop_trial_t *trials, uint32_t n, uint32_t first_id,
                   uint32_t threads, sm_eprop_grad_t *g, sm_errbuf_t *eb)
{
    const sm_eprop_params_t *p = &net->p;
    if (threads == 0) {
        uv_cpu_info_t *ci;
        int nc = 0;
        threads = uv_cpu_info(&ci, &nc) == 0 && nc > 0 ? (uint32_t)nc : 1u;
        if (nc > 0)
            uv_free_cpu_info(ci, nc);
    }
    if (threads > n)
        threads = n ? n : 1u;
    sm_eprop_grad_zero(g, p);
    sm_eprop_grad_t *per = calloc(n, sizeof *per);
    sm__batch_job_t *jobs = calloc(threads, sizeof *jobs);
    uv_thread_t *tid = calloc(threads, sizeof *tid);
    int rc = 0;
    if (!per || !jobs || !tid)
        rc = SM_ENOMEM;
    for (uint32_t b = 0; rc == 0 && b < n; b++)
        if (sm_eprop_grad_alloc(&per[b], p) != 0)
            rc = SM_ENOMEM;
    if (rc == 0) {
        uint32_t started = 0;
        for (uint32_t k = 0; k < threads; k++) {
            jobs[k] = (sm__batch_job_t){.net = net, .trials = trials, .per = per, .n = n, .first_id = first_id,
                                        .nthreads = threads, .me = k};
            if (k > 0 && uv_thread_create(&tid[k], sm__batch_worker, &jobs[k]) != 0) {
                rc = SM_ENOMEM;
                break;
            }
            started = k + 1;
        }
        if (rc == 0)
            sm__batch_worker(&jobs[0]);
        for (uint32_t k = 1; k < started; k++)
            uv_thread_join(&tid[k]);
        for (uint32_t k = 0; k < started; k++)
            if (jobs[k].fail)
                rc = SM_ENOMEM;
    }
    if (rc == 0) {
        for (uint32_t b = 0; b < n; b++)
            sm_eprop_grad_add(g, &per[b], p);
        sm_eprop_grad_finish(g, p, n ? trials[0].nsteps : 0);
    }
    for (uint32_t b = 0; per && b < n; b++)
        sm_eprop_grad_free(&per[b]);
    free(per);
    free(jobs);
    free(tid);
    if (rc)
        return sm_errorf(eb, rc, "eprop: out of memory for a batch of %u trials on %u threads", n, threads);
    return 0;
}

/* ---- optimizers ---- */

int sm_opt_init(sm_opt_t *o, sm_opt_kind_t kind, double lr, const sm_eprop_params_t *p)
{
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->lr = lr;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    o->w_min = -INFINITY;
    o->w_max = INFINITY;
    o->train_in = o->train_rec = o->train_out = 1;
    uint64_t n = sm_eprop_nsyn(p) + (uint64_t)p->n_rec + p->n_out; /* every parameter, autapse slots included */
    o->m = calloc(n, sizeof(double));
    o->v = calloc(n, sizeof(double));
    if (!o->m || !o->v) {
        sm_opt_free(o);
        return SM_ENOMEM;
    }
    return 0;
}

void sm_opt_free(sm_opt_t *o)
{
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

void sm_opt_apply(const sm_opt_t *o, uint64_t t, double *w, const double *g, double *m, double *v, uint64_t n)
{
    if (o->kind == SM_OPT_SGD) {
        for (uint64_t i = 0; i < n; i++)
            w[i] -= o->lr * g[i];
    } else {
        double c1 = 1.0 - pow(o->beta1, (double)t), c2 = 1.0 - pow(o->beta2, (double)t);
        for (uint64_t i = 0; i < n; i++) {
            m[i] = o->beta1 * m[i] + (1.0 - o->beta1) * g[i];
            v[i] = o->beta2 * v[i] + (1.0 - o->beta2) * g[i] * g[i];
            w[i] -= o->lr * (m[i] / c1) / (sqrt(v[i] / c2) + o->eps);
        }
    }
    for (uint64_t i = 0; i < n; i++)
        w[i] = w[i] < o->w_min ? o->w_min : (w[i] > o->w_max ? o->w_max : w[i]);
}

/* Weights in fixed-point mode, rounded stochastically after each update. */
static void sm__quant_weights(const sm_eprop_net_t *net, double *w, uint64_t n, uint32_t block, uint64_t t)
{
    const sm_eprop_params_t *p = &net->p;
    double qmax = ldexp(1.0, (int)p->weight_bits - 1) - 1.0, stp = p->weight_range / (qmax + 1.0);
    uint32_t o[4] = {0, 0, 0, 0};
    for (uint64_t i = 0; i < n; i++) {
        if ((i & 3u) == 0)
            sm_philox(net->seed, SM_STREAM_EPROP_ROUND, 0xFFFFFF00u + block, (uint32_t)t, (uint32_t)(i >> 2), o);
        w[i] = sm__sround(w[i], stp, qmax, o[i & 3u]);
    }
}

void sm_opt_step(sm_opt_t *o, sm_eprop_net_t *net, const sm_eprop_grad_t *g, sm_eprop_counters_t *ops)
{
    const sm_eprop_params_t *p = &net->p;
    uint64_t ni = p->n_in, nr = p->n_rec, no = p->n_out, off = 0, written = 0;
    uint64_t t = ++o->t;
    if (o->train_in) {
        sm_opt_apply(o, t, net->w_in, g->g_in, o->m + off, o->v + off, nr * ni);
        written += nr * ni;
        if (p->weight_bits)
            sm__quant_weights(net, net->w_in, nr * ni, 0, t);
    }
    off += nr * ni;
    if (o->train_rec) {
        sm_opt_apply(o, t, net->w_rec, g->g_rec, o->m + off, o->v + off, nr * nr);
        for (uint64_t j = 0; j < nr; j++)
            net->w_rec[j * nr + j] = 0.0;
        written += nr * (nr - 1);
        if (p->weight_bits)
            sm__quant_weights(net, net->w_rec, nr * nr, 1, t);
    }
    off += nr * nr;
    if (o->train_out) {
        sm_opt_apply(o, t, net->w_out, g->g_out, o->m + off, o->v + off, no * nr);
        off += no * nr;
        /* Biases are not bounded by the weight bounds. */
        sm_opt_t ob = *o;
        ob.w_min = -INFINITY;
        ob.w_max = INFINITY;
        sm_opt_apply(&ob, t, net->b_out, g->g_b, o->m + off, o->v + off, no);
        written += no * nr + no;
        if (p->weight_bits)
            sm__quant_weights(net, net->w_out, no * nr, 2, t);
    }
    if (ops)
        ops->weight_updates += written;
}
