/* tests/test_eprop.c: e-prop gradients against a hand-written backward pass through time over the same recorded
 * forward trajectory, the optimizers against their closed forms, fixed-point sign agreement, thread independence. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spikemesh/spikemesh.h"
#include "tests/unit.h"

/* A small mixed network: 4 LIF and 4 ALIF neurons, refractory for 2 steps, driven hard enough to spike. */
static void small_params(sm_eprop_params_t *p, sm_eprop_loss_t loss)
{
    sm_eprop_params_default(p);
    p->n_in = 6;
    p->n_rec = 8;
    p->n_alif = 4;
    p->n_out = 2;
    p->tau_a = 50.0;
    p->v_th = 1.0;
    p->beta = 0.5;
    p->n_ref = 2;
    p->loss = loss;
    p->w_in_scale = 1.5;
    p->w_rec_scale = 1.5;
    p->c_reg = 0.7;
    p->f_target_hz = 20.0;
}

typedef struct {
    uint32_t T;
    uint8_t *x, *mask;
    double *target;
} data_t;

static void make_data(data_t *d, const sm_eprop_params_t *p, uint32_t T, uint32_t salt)
{
    d->T = T;
    d->x = calloc((size_t)T * p->n_in, 1);
    d->mask = calloc(T, 1);
    d->target = calloc((size_t)T * p->n_out, sizeof(double));
    for (uint32_t t = 0; t < T; t++) {
        uint32_t o[4];
        for (uint32_t i = 0; i < p->n_in; i++) {
            sm_philox(99, 40, salt, t, i, o);
            d->x[t * p->n_in + i] = sm_u01(o[0], o[1]) < 0.25;
        }
        d->mask[t] = t >= T / 3;
        for (uint32_t k = 0; k < p->n_out; k++)
            d->target[t * p->n_out + k] =
                p->loss == SM_EPROP_REGRESSION ? sin(0.2 * t + k) : (double)(k == (salt & 1u));
    }
}

static void free_data(data_t *d)
{
    free(d->x);
    free(d->mask);
    free(d->target);
}

/* The recorded trajectory and the reference gradient of the backward pass. */
typedef struct {
    double *v, *a, *psi, *z, *y;
    double *gv, *gz, *ga, *gy, *err;
    double *ltrue; /* [T * n_rec]: dE/dz_j,t through the readouts and the other neurons (not z_j -> a_j) */
    double *g_in, *g_rec, *g_out, *g_b;
} ref_t;

static void ref_alloc(ref_t *r, const sm_eprop_params_t *p, uint32_t T)
{
    size_t nr = p->n_rec, no = p->n_out, ni = p->n_in;
    r->v = calloc(T * nr, sizeof(double));
    r->a = calloc(T * nr, sizeof(double));
    r->psi = calloc(T * nr, sizeof(double));
    r->z = calloc(T * nr, sizeof(double));
    r->y = calloc(T * no, sizeof(double));
    r->gv = calloc((T + 1) * nr, sizeof(double));
    r->ga = calloc((T + 1) * nr, sizeof(double));
    r->gz = calloc(T * nr, sizeof(double));
    r->gy = calloc((T + 1) * no, sizeof(double));
    r->err = calloc(T * no, sizeof(double));
    r->ltrue = calloc(T * nr, sizeof(double));
    r->g_in = calloc(nr * ni, sizeof(double));
    r->g_rec = calloc(nr * nr, sizeof(double));
    r->g_out = calloc(no * nr, sizeof(double));
    r->g_b = calloc(no, sizeof(double));
}

static void ref_free(ref_t *r)
{
    double *ps[] = {r->v, r->a, r->psi, r->z, r->y, r->gv, r->gz, r->ga, r->gy, r->err, r->ltrue, r->g_in,
                    r->g_rec, r->g_out, r->g_b};
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++)
        free(ps[k]);
}

/* Backward pass through time (reset left out, refractory steps have psi = 0), written from the model equations:
 *   dE/dy_t = err_t + kappa dE/dy_t+1
 *   dE/dz_t = W_out^T dE/dy_t + W_rec^T dE/dv_t+1 + dE/da_t+1 + c_reg (f - f_target) / T
 *   dE/dv_t = psi_t dE/dz_t + alpha dE/dv_t+1,   dE/da_t = -beta psi_t dE/dz_t + rho dE/da_t+1
 * err_t is computed here from the recorded readout, not taken from the module. */
static void backward(const sm_eprop_net_t *net, const data_t *d, ref_t *r)
{
    const sm_eprop_params_t *p = &net->p;
    uint32_t ni = p->n_in, nr = p->n_rec, no = p->n_out, T = d->T;
    double alpha = exp(-p->dt / p->tau_m), rho = exp(-p->dt / p->tau_a), kappa = exp(-p->dt / p->tau_out);
    uint32_t tm = 0;
    for (uint32_t t = 0; t < T; t++)
        tm += d->mask[t];
    for (uint32_t t = 0; t < T; t++) {
        const double *y = r->y + t * no, *ys = d->target + t * no;
        double mx = y[0], zs = 0;
        for (uint32_t k = 1; k < no; k++)
            mx = fmax(mx, y[k]);
        for (uint32_t k = 0; k < no; k++)
            zs += exp(y[k] - mx);
        for (uint32_t k = 0; k < no; k++)
            r->err[t * no + k] = !d->mask[t] ? 0.0
                                 : p->loss == SM_EPROP_REGRESSION ? (y[k] - ys[k]) / tm
                                                                  : (exp(y[k] - mx) / zs - ys[k]) / tm;
    }
    double ft = p->f_target_hz * p->dt * 1e-3;
    for (uint32_t tt = T; tt-- > 0;) {
        for (uint32_t k = 0; k < no; k++)
            r->gy[tt * no + k] = r->err[tt * no + k] + kappa * r->gy[(tt + 1) * no + k];
        for (uint32_t j = 0; j < nr; j++) {
            double l = 0;
            for (uint32_t k = 0; k < no; k++)
                l += net->w_out[k * nr + j] * r->gy[tt * no + k];
            for (uint32_t m = 0; m < nr; m++)
                l += net->w_rec[m * nr + j] * r->gv[(tt + 1) * nr + m];
            if (p->c_reg > 0) {
                double f = 0;
                for (uint32_t s = 0; s < T; s++)
                    f += r->z[s * nr + j];
                l += p->c_reg * (f / T - ft) / T;
            }
            r->ltrue[tt * nr + j] = l;
            double beta = j >= nr - p->n_alif ? p->beta : 0.0;
            double gz = l + r->ga[(tt + 1) * nr + j];
            r->gz[tt * nr + j] = gz;
            double ps = r->psi[tt * nr + j];
            r->gv[tt * nr + j] = ps * gz + alpha * r->gv[(tt + 1) * nr + j];
            r->ga[tt * nr + j] = -beta * ps * gz + rho * r->ga[(tt + 1) * nr + j];
        }
    }
    for (uint32_t t = 0; t < T; t++) {
        for (uint32_t j = 0; j < nr; j++) {
            double gv = r->gv[t * nr + j];
            for (uint32_t i = 0; i < ni; i++)
                r->g_in[j * ni + i] += gv * d->x[t * ni + i];
            for (uint32_t i = 0; t > 0 && i < nr; i++)
                if (i != j)
                    r->g_rec[j * nr + i] += gv * r->z[(t - 1) * nr + i];
            for (uint32_t k = 0; k < no; k++)
                r->g_out[k * nr + j] += r->gy[t * no + k] * r->z[t * nr + j];
        }
        for (uint32_t k = 0; k < no; k++)
            r->g_b[k] += r->gy[t * no + k];
    }
}

/* max |a - b| / max |b| over an array. */
static double relmax(const double *a, const double *b, size_t n)
{
    double d = 0, s = 1e-300;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs(a[i] - b[i]));
        s = fmax(s, fabs(b[i]));
    }
    return d / s;
}

static double maxabs(const double *a, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s = fmax(s, fabs(a[i]));
    return s;
}

/* Runs one recorded trial, then the backward pass over it. */
static void run_and_backward(sm_eprop_net_t *net, data_t *d, const double *learn, sm_eprop_grad_t *g, ref_t *r)
{
    sm_eprop_work_t *w = sm_eprop_work_new(&net->p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL_FATAL(sm_eprop_grad_alloc(g, &net->p), 0);
    ref_alloc(r, &net->p, d->T);
    sm_eprop_record_t rec = {.v = r->v, .a = r->a, .psi = r->psi, .z = r->z, .y = r->y};
    sm_eprop_trial_t tr = {.nsteps = d->T, .x = d->x, .target = d->target, .mask = d->mask, .learn = learn};
    sm_eprop_trial(net, w, &tr, 0, g, &rec);
    sm_eprop_grad_finish(g, &net->p, d->T);
    sm_eprop_work_free(w);
    backward(net, d, r);
}

/* Counts spikes, refractory steps and steps with psi > 0, so that a test knows its trajectory exercises them. */
static void activity(const sm_eprop_params_t *p, const ref_t *r, uint32_t T, uint32_t *spk, uint32_t *alif_spk,
                     uint32_t *psi_on)
{
    *spk = *alif_spk = *psi_on = 0;
    for (uint32_t t = 0; t < T; t++)
        for (uint32_t j = 0; j < p->n_rec; j++) {
            *spk += r->z[t * p->n_rec + j] != 0;
            *alif_spk += j >= p->n_rec - p->n_alif && r->z[t * p->n_rec + j] != 0;
            *psi_on += r->psi[t * p->n_rec + j] > 0;
        }
}

/* Without recurrent weights, with symmetric feedback and ebar filtered with the readout's kappa, e-prop is the
 * exact gradient (the rate regularizer included). */
static void check_exact(sm_eprop_loss_t loss)
{
    sm_eprop_params_t p;
    small_params(&p, loss);
    sm_eprop_net_t net;
    CU_ASSERT_EQUAL_FATAL(sm_eprop_net_init(&net, &p, 5, NULL), 0);
    memset(net.w_rec, 0, (size_t)p.n_rec * p.n_rec * sizeof(double));
    data_t d;
    make_data(&d, &p, 120, loss);
    sm_eprop_grad_t g;
    ref_t r;
    run_and_backward(&net, &d, NULL, &g, &r);
    uint32_t spk, aspk, pon;
    activity(&p, &r, d.T, &spk, &aspk, &pon);
    CU_ASSERT(spk > 20);
    CU_ASSERT(aspk > 5);
    CU_ASSERT(pon > 50);
    CU_ASSERT(maxabs(r.g_in, (size_t)p.n_rec * p.n_in) > 1e-6);
    CU_ASSERT(relmax(g.g_in, r.g_in, (size_t)p.n_rec * p.n_in) < 1e-9);
    CU_ASSERT(relmax(g.g_rec, r.g_rec, (size_t)p.n_rec * p.n_rec) < 1e-9);
    CU_ASSERT(relmax(g.g_out, r.g_out, (size_t)p.n_out * p.n_rec) < 1e-9);
    CU_ASSERT(relmax(g.g_b, r.g_b, p.n_out) < 1e-9);
    sm_eprop_grad_free(&g);
    ref_free(&r);
    free_data(&d);
    sm_eprop_net_free(&net);
}

static void test_exact_regression(void)
{
    check_exact(SM_EPROP_REGRESSION);
}

static void test_exact_classification(void)
{
    check_exact(SM_EPROP_CLASSIFICATION);
}

/* With recurrence: the backward pass's true dE/dz_t times the eligibility traces gives its weight gradient, both
 * with traces computed here from the recorded trajectory and with the module's traces fed that signal. */
static void test_factorization(void)
{
    sm_eprop_params_t p;
    small_params(&p, SM_EPROP_REGRESSION);
    sm_eprop_net_t net;
    CU_ASSERT_EQUAL_FATAL(sm_eprop_net_init(&net, &p, 11, NULL), 0);
    data_t d;
    make_data(&d, &p, 120, 3);
    sm_eprop_grad_t g;
    ref_t r;
    run_and_backward(&net, &d, NULL, &g, &r);
    uint32_t spk, aspk, pon;
    activity(&p, &r, d.T, &spk, &aspk, &pon);
    CU_ASSERT(spk > 20);
    CU_ASSERT(aspk > 5);
    uint32_t ni = p.n_in, nr = p.n_rec, np = ni + nr, T = d.T;
    /* Traces from the recorded trajectory: zbar, eps and e = psi (zbar - beta eps). */
    double alpha = exp(-p.dt / p.tau_m), rho = exp(-p.dt / p.tau_a), kappa = exp(-p.dt / p.tau_out);
    double *zb = calloc(np, sizeof(double)), *zbp = calloc(np, sizeof(double));
    double *eps = calloc((size_t)nr * np, sizeof(double)), *gf = calloc((size_t)nr * np, sizeof(double));
    for (uint32_t t = 0; t < T; t++) {
        memcpy(zbp, zb, np * sizeof(double));
        for (uint32_t i = 0; i < ni; i++)
            zb[i] = alpha * zb[i] + d.x[t * ni + i];
        for (uint32_t i = 0; i < nr; i++)
            zb[ni + i] = alpha * zb[ni + i] + (t ? r.z[(t - 1) * nr + i] : 0.0);
        for (uint32_t j = 0; j < nr; j++) {
            double beta = j >= nr - p.n_alif ? p.beta : 0.0;
            double ps = r.psi[t * nr + j], pp = t ? r.psi[(t - 1) * nr + j] : 0.0;
            for (uint32_t i = 0; i < np; i++) {
                double *e1 = &eps[j * np + i];
                *e1 = pp * zbp[i] + (rho - beta * pp) * *e1;
                gf[j * np + i] += r.ltrue[t * nr + j] * ps * (zb[i] - beta * *e1);
            }
        }
    }
    double *gin = calloc((size_t)nr * ni, sizeof(double)), *grec = calloc((size_t)nr * nr, sizeof(double));
    for (uint32_t j = 0; j < nr; j++) {
        for (uint32_t i = 0; i < ni; i++)
            gin[j * ni + i] = gf[j * np + i];
        for (uint32_t i = 0; i < nr; i++)
            grec[j * nr + i] = i == j ? 0.0 : gf[j * np + ni + i];
    }
    CU_ASSERT(maxabs(r.g_rec, (size_t)nr * nr) > 1e-6);
    CU_ASSERT(relmax(gin, r.g_in, (size_t)nr * ni) < 1e-9);
    CU_ASSERT(relmax(grec, r.g_rec, (size_t)nr * nr) < 1e-9);
    /* e-prop's own gradient differs (it leaves out the paths through other neurons)... */
    CU_ASSERT(relmax(g.g_rec, r.g_rec, (size_t)nr * nr) > 1e-6);
    /* ...but the module's traces fed the true signal, inverse-filtered by kappa so that its kappa-filtered ebar
     * gives sum_t L_t e_t, reproduce the backward pass. The regularizer is in ltrue, so it is turned off here. */
    double *lin = calloc((size_t)T * nr, sizeof(double));
    for (uint32_t t = 0; t < T; t++)
        for (uint32_t j = 0; j < nr; j++)
            lin[t * nr + j] = r.ltrue[t * nr + j] - (t + 1 < T ? kappa * r.ltrue[(t + 1) * nr + j] : 0.0);
    sm_eprop_grad_t g2;
    ref_t r2;
    net.p.c_reg = 0.0;
    run_and_backward(&net, &d, lin, &g2, &r2);
    CU_ASSERT(relmax(g2.g_in, r.g_in, (size_t)nr * ni) < 1e-9);
    CU_ASSERT(relmax(g2.g_rec, r.g_rec, (size_t)nr * nr) < 1e-9);
    free(lin);
    sm_eprop_grad_free(&g2);
    ref_free(&r2);
    free(zb);
    free(zbp);
    free(eps);
    free(gf);
    free(gin);
    free(grec);
    sm_eprop_grad_free(&g);
    ref_free(&r);
    free_data(&d);
    sm_eprop_net_free(&net);
}

/* Adam and SGD against their closed forms. */
static void test_optimizers(void)
{
    sm_eprop_params_t p;
    small_params(&p, SM_EPROP_REGRESSION);
    sm_opt_t o;
    CU_ASSERT_EQUAL_FATAL(sm_opt_init(&o, SM_OPT_ADAM, 0.01, &p), 0);
    /* A constant gradient: the bias-corrected moments are g and g^2 at every step, so each step is exactly
     * lr g / (|g| + eps). */
    double w[2] = {1.0, -2.0}, g[2] = {0.5, -3.0}, m[2] = {0, 0}, v[2] = {0, 0};
    for (uint64_t t = 1; t <= 50; t++)
        sm_opt_apply(&o, t, w, g, m, v, 2);
    CU_ASSERT(fabs(w[0] - (1.0 - 50 * 0.01 * 0.5 / (0.5 + 1e-8))) < 1e-12);
    CU_ASSERT(fabs(w[1] - (-2.0 + 50 * 0.01 * 3.0 / (3.0 + 1e-8))) < 1e-12);
    /* A quadratic f = c/2 (w - w*)^2: the recursion with its closed-form bias corrections 1 - b^t. */
    double c = 4.0, ws = 0.3, x = 2.0, mm = 0, vv = 0, wq = 2.0, gq, mq = 0, vq = 0;
    for (int t = 1; t <= 800; t++) {
        gq = c * (wq - ws);
        sm_opt_apply(&o, (uint64_t)t, &wq, &gq, &mq, &vq, 1);
        double gr = c * (x - ws);
        mm = 0.9 * mm + 0.1 * gr;
        vv = 0.999 * vv + 0.001 * gr * gr;
        x -= 0.01 * (mm / (1.0 - pow(0.9, t))) / (sqrt(vv / (1.0 - pow(0.999, t))) + 1e-8);
        CU_ASSERT(fabs(wq - x) < 1e-12);
    }
    CU_ASSERT(fabs(wq - ws) < 0.05);
    /* SGD: w_t - w* = (1 - lr c)^t (w_0 - w*). */
    o.kind = SM_OPT_SGD;
    o.lr = 0.1;
    wq = 2.0;
    for (int t = 1; t <= 20; t++) {
        gq = c * (wq - ws);
        sm_opt_apply(&o, (uint64_t)t, &wq, &gq, NULL, NULL, 1);
    }
    CU_ASSERT(fabs(wq - (ws + pow(1.0 - 0.1 * c, 20) * (2.0 - ws))) < 1e-12);
    /* Bounds. */
    o.w_min = -0.5;
    o.w_max = 0.25;
    double wb[2] = {0.2, -0.4}, gb[2] = {-1.0, 1.0};
    sm_opt_apply(&o, 1, wb, gb, NULL, NULL, 2);
    CU_ASSERT_DOUBLE_EQUAL(wb[0], 0.25, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(wb[1], -0.5, 0.0);
    sm_opt_free(&o);
}

/* A batch gives the same gradient on 1 and 3 threads (trial sums in trial order), and training lowers the loss. */
static void test_batch_threads(void)
{
    sm_eprop_params_t p;
    small_params(&p, SM_EPROP_REGRESSION);
    sm_eprop_net_t net;
    CU_ASSERT_EQUAL_FATAL(sm_eprop_net_init(&net, &p, 3, NULL), 0);
    data_t d[5];
    sm_eprop_trial_t tr[5];
    for (uint32_t b = 0; b < 5; b++) {
        make_data(&d[b], &p, 80, b);
        tr[b] = (sm_eprop_trial_t){.nsteps = 80, .x = d[b].x, .target = d[b].target, .mask = d[b].mask};
    }
    sm_eprop_grad_t g1, g3;
    CU_ASSERT_EQUAL_FATAL(sm_eprop_grad_alloc(&g1, &p), 0);
    CU_ASSERT_EQUAL_FATAL(sm_eprop_grad_alloc(&g3, &p), 0);
    CU_ASSERT_EQUAL(sm_eprop_batch(&net, tr, 5, 0, 1, &g1, NULL), 0);
    CU_ASSERT_EQUAL(sm_eprop_batch(&net, tr, 5, 0, 3, &g3, NULL), 0);
    CU_ASSERT(memcmp(g1.g_in, g3.g_in, (size_t)p.n_rec * p.n_in * sizeof(double)) == 0);
    CU_ASSERT(memcmp(g1.g_rec, g3.g_rec, (size_t)p.n_rec * p.n_rec * sizeof(double)) == 0);
    CU_ASSERT(g1.loss == g3.loss);
    CU_ASSERT(g1.ops.trace_updates > 0 && g1.ops.trace_updates == g3.ops.trace_updates);
    sm_opt_t o;
    CU_ASSERT_EQUAL_FATAL(sm_opt_init(&o, SM_OPT_ADAM, 0.01, &p), 0);
    double first = g1.loss, last = first;
    sm_eprop_counters_t ops = {0};
    for (int it = 0; it < 60; it++) {
        sm_eprop_batch(&net, tr, 5, 0, 2, &g1, NULL);
        last = g1.loss;
        sm_opt_step(&o, &net, &g1, &ops);
    }
    CU_ASSERT(last < 0.7 * first);
    CU_ASSERT_EQUAL(ops.weight_updates, 60 * sm_eprop_nsyn(&p) + 60 * p.n_out);
    sm_opt_free(&o);
    sm_eprop_grad_free(&g1);
    sm_eprop_grad_free(&g3);
    for (uint32_t b = 0; b < 5; b++)
        free_data(&d[b]);
    sm_eprop_net_free(&net);
}

/* Online updates: an update every T steps of a T-step trial is the end-of-trial update of a batch of 1, bit for
 * bit; shorter intervals change the weights during the trial. Learning-signal packets: one per readout per step
 * of the error window. */
typedef struct {
    sm_opt_t *o;
    sm_eprop_net_t *net;
    uint32_t calls, steps;
} online_t;

static void online_cb(void *ctx, sm_eprop_grad_t *g, uint32_t steps)
{
    online_t *c = ctx;
    c->calls++;
    c->steps += steps;
    g->trials = 1;
    sm_eprop_grad_finish(g, &c->net->p, steps);
    sm_opt_step(c->o, c->net, g, NULL);
    sm_eprop_grad_zero(g, &c->net->p);
}

static void test_online_updates(void)
{
    sm_eprop_params_t p;
    small_params(&p, SM_EPROP_CLASSIFICATION);
    const uint32_t T = 60;
    data_t d;
    make_data(&d, &p, T, 1);
    sm_eprop_trial_t tr = {.nsteps = T, .x = d.x, .target = d.target, .mask = d.mask};
    uint32_t window = 0;
    for (uint32_t t = 0; t < T; t++)
        window += d.mask[t];
    sm_eprop_net_t a, b, c;
    CU_ASSERT_EQUAL_FATAL(sm_eprop_net_init(&a, &p, 5, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(sm_eprop_net_init(&b, &p, 5, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(sm_eprop_net_init(&c, &p, 5, NULL), 0);
    sm_opt_t oa, ob, oc;
    CU_ASSERT_EQUAL_FATAL(sm_opt_init(&oa, SM_OPT_ADAM, 0.01, &p), 0);
    CU_ASSERT_EQUAL_FATAL(sm_opt_init(&ob, SM_OPT_ADAM, 0.01, &p), 0);
    CU_ASSERT_EQUAL_FATAL(sm_opt_init(&oc, SM_OPT_ADAM, 0.01, &p), 0);
    sm_eprop_grad_t g;
    CU_ASSERT_EQUAL_FATAL(sm_eprop_grad_alloc(&g, &p), 0);
    sm_eprop_work_t *w = sm_eprop_work_new(&p);
    CU_ASSERT_FATAL(w != NULL);
    uint64_t packets = 0;
    for (uint32_t it = 0; it < 3; it++) {
        CU_ASSERT_EQUAL(sm_eprop_batch(&a, &tr, 1, it, 1, &g, NULL), 0);
        packets += g.ops.learning_packets;
        sm_opt_step(&oa, &a, &g, NULL);
        online_t cb = {&ob, &b, 0, 0};
        sm_eprop_grad_zero(&g, &p);
        sm_eprop_trial_online(&b, w, &tr, it, &g, NULL, T, online_cb, &cb);
        CU_ASSERT_EQUAL(cb.calls, 1);
        online_t cc = {&oc, &c, 0, 0};
        sm_eprop_grad_zero(&g, &p);
        sm_eprop_trial_online(&c, w, &tr, it, &g, NULL, 25, online_cb, &cc);
        CU_ASSERT_EQUAL(cc.calls, 3); /* after steps 25 and 50, and at 60 */
        CU_ASSERT_EQUAL(cc.steps, T);
    }
    CU_ASSERT_EQUAL(packets, (uint64_t)p.n_out * window * 3);
    size_t nin = (size_t)p.n_rec * p.n_in, nrec = (size_t)p.n_rec * p.n_rec, nout = (size_t)p.n_out * p.n_rec;
    CU_ASSERT(memcmp(a.w_in, b.w_in, nin * sizeof(double)) == 0);
    CU_ASSERT(memcmp(a.w_rec, b.w_rec, nrec * sizeof(double)) == 0);
    CU_ASSERT(memcmp(a.w_out, b.w_out, nout * sizeof(double)) == 0);
    CU_ASSERT(memcmp(a.b_out, b.b_out, p.n_out * sizeof(double)) == 0);
    CU_ASSERT(memcmp(a.w_rec, c.w_rec, nrec * sizeof(double)) != 0);
    CU_ASSERT_EQUAL(ob.t, 3);
    CU_ASSERT_EQUAL(oc.t, 9);
    sm_eprop_work_free(w);
    sm_eprop_grad_free(&g);
    sm_opt_free(&oa);
    sm_opt_free(&ob);
    sm_opt_free(&oc);
    sm_eprop_net_free(&a);
    sm_eprop_net_free(&b);
    sm_eprop_net_free(&c);
    free_data(&d);
}

/* Fixed-point traces of 16 bits: the gradient's signs agree with float mode on more than 90% of the synapses
 * whose float gradient is not negligible. */
static void test_fixed_point_signs(void)
{
    sm_eprop_params_t p;
    small_params(&p, SM_EPROP_REGRESSION);
    p.c_reg = 0.0;
    sm_eprop_net_t net;
    CU_ASSERT_EQUAL_FATAL(sm_eprop_net_init(&net, &p, 21, NULL), 0);
    data_t d;
    make_data(&d, &p, 120, 1);
    sm_eprop_trial_t tr = {.nsteps = d.T, .x = d.x, .target = d.target, .mask = d.mask};
    sm_eprop_grad_t gf, gq;
    CU_ASSERT_EQUAL_FATAL(sm_eprop_grad_alloc(&gf, &p), 0);
    CU_ASSERT_EQUAL_FATAL(sm_eprop_grad_alloc(&gq, &p), 0);
    CU_ASSERT_EQUAL(sm_eprop_batch(&net, &tr, 1, 0, 1, &gf, NULL), 0);
    net.p.trace_bits = 16;
    net.p.trace_range = 8.0;
    CU_ASSERT_EQUAL(sm_eprop_batch(&net, &tr, 1, 0, 1, &gq, NULL), 0);
    size_t n = (size_t)p.n_rec * p.n_in, agree = 0, count = 0;
    double mx = maxabs(gf.g_in, n);
    for (size_t k = 0; k < n; k++)
        if (fabs(gf.g_in[k]) > 1e-3 * mx) {
            count++;
            agree += (gf.g_in[k] > 0) == (gq.g_in[k] > 0);
        }
    CU_ASSERT(count > 20);
    CU_ASSERT(agree > 0.9 * (double)count);
    /* Coarser traces still give a gradient, and the rounding is a pure function of the seed. */
    sm_eprop_grad_t gq2;
    CU_ASSERT_EQUAL_FATAL(sm_eprop_grad_alloc(&gq2, &p), 0);
    CU_ASSERT_EQUAL(sm_eprop_batch(&net, &tr, 1, 0, 1, &gq2, NULL), 0);
    CU_ASSERT(memcmp(gq.g_in, gq2.g_in, n * sizeof(double)) == 0);
    sm_eprop_grad_free(&gq2);
    sm_eprop_grad_free(&gf);
    sm_eprop_grad_free(&gq);
    free_data(&d);
    sm_eprop_net_free(&net);
}

static void test_params_refused(void)
{
    sm_eprop_params_t p;
    sm_errbuf_t eb = {0};
    small_params(&p, SM_EPROP_REGRESSION);
    p.n_alif = 9;
    CU_ASSERT_EQUAL(sm_eprop_params_check(&p, &eb), SM_EINVAL);
    CU_ASSERT(strstr(eb.msg, "n_alif") != NULL);
    small_params(&p, SM_EPROP_REGRESSION);
    p.trace_bits = 1;
    CU_ASSERT_EQUAL(sm_eprop_params_check(&p, &eb), SM_EINVAL);
    CU_ASSERT(strstr(eb.msg, "trace_bits") != NULL);
}

int sm_test_eprop_register(void)
{
    CU_pSuite s = CU_add_suite("eprop", NULL, NULL);
    if (!s)
        return -1;
    if (!CU_add_test(s, "no recurrence: e-prop is the exact gradient (regression)", test_exact_regression) ||
        !CU_add_test(s, "no recurrence: e-prop is the exact gradient (softmax)", test_exact_classification) ||
        !CU_add_test(s, "recurrence: true dE/dz times the traces is the BPTT gradient", test_factorization) ||
        !CU_add_test(s, "Adam and SGD against their closed forms, bounds", test_optimizers) ||
        !CU_add_test(s, "batches do not depend on threads; training lowers the loss", test_batch_threads) ||
        !CU_add_test(s, "16-bit traces agree in sign with float mode", test_fixed_point_signs) ||
        !CU_add_test(s, "online updates every T steps = end of trial; packets per readout", test_online_updates) ||
        !CU_add_test(s, "bad parameters are refused", test_params_refused))
        return -1;
    return 0;
}
