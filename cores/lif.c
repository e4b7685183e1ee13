/* cores/lif.c: leaky integrate-and-fire neurons with current-based exponential synapses, integrated exactly
 * per step, and Poisson source neurons. */
#include <math.h>

#include "spikemesh/core.h"

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
    c->v_inf = p->v_rest + p->i_bias;
    c->v_thresh = p->v_thresh;
    c->v_reset = p->v_reset;
    /* Same rounding as Brian2's timestep(): a hair above the exact quotient rounds down. */
    double rs = floor(p->t_ref / dt + 1e-3);
    if (rs > 1e9)
        return sm_errorf(eb, SM_ERANGE, "refractory period of %g ms is more than 1e9 steps", p->t_ref);
    c->ref_steps = (int32_t)rs;
    return 0;
}

uint32_t sm_core_lif_step(const sm_lif_consts_t *c, uint32_t n, double *restrict v, double *restrict ge,
                          double *restrict gi, int32_t *restrict ref, float *restrict in_e,
                          float *restrict in_i, uint32_t base, uint32_t *restrict spikes)
{
    const double pm = c->pm, pe = c->pe, pi = c->pi, ce = c->ce, ci = c->ci;
    const double v_inf = c->v_inf, v_th = c->v_thresh, v_reset = c->v_reset;
    const int32_t ref_steps = c->ref_steps;
    uint32_t ns = 0;
    for (uint32_t i = 0; i < n; i++) {
        double e = ge[i] + (double)in_e[i];
        double g = gi[i] + (double)in_i[i];
        in_e[i] = 0.0f;
        in_i[i] = 0.0f;
        int32_t r = ref[i];
        r -= (r > 0);
        double vi = v_inf + (v[i] - v_inf) * pm + e * ce + g * ci;
        double vn = (r == 0) ? vi : v[i];
        int s = (r == 0) & (vn > v_th);
        v[i] = s ? v_reset : vn;
        ref[i] = s ? ref_steps : r;
        ge[i] = e * pe;
        gi[i] = g * pi;
        if (s)
            spikes[ns++] = base + i;
    }
    return ns;
}

uint32_t sm_core_poisson_step(double p_spike, uint64_t seed, uint32_t n, uint32_t base, uint64_t step,
                              uint32_t *restrict spikes)
{
    uint32_t ns = 0;
    if (!(p_spike > 0.0))
        return 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t r[4];
        sm_philox(seed, SM_STREAM_POISSON, base + i, (uint32_t)step, (uint32_t)(step >> 32), r);
        if (sm_u01(r[0], r[1]) < p_spike)
            spikes[ns++] = base + i;
    }
    return ns;
}
