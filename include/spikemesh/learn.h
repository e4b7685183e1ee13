/* spikemesh/learn.h: on-chip learning with e-prop (Bellec et al. 2020): recurrent LIF and ALIF neurons, leaky
 * readouts, eligibility traces, learning signals, gradients, optimizers and the operation counters the chip charges. */
#ifndef SPIKEMESH_LEARN_H
#define SPIKEMESH_LEARN_H

#include <stdint.h>

#include "spikemesh/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Random streams of the learning module (see sm_stream_t): every draw is keyed by (seed, stream, a, b, counter). */
enum {
    SM_STREAM_EPROP_INIT = SM_STREAM_USER + 1,  /* a = weight matrix (0 in, 1 rec, 2 out, 3 feedback), b = row */
    SM_STREAM_EPROP_ROUND = SM_STREAM_USER + 2, /* stochastic rounding: a = trial, b = step, counter = synapse / 4 */
    SM_STREAM_EPROP_TASK = SM_STREAM_USER + 3   /* task inputs: a = trial, b = input neuron, counter = step / 4 */
};

typedef enum { SM_EPROP_REGRESSION = 0, SM_EPROP_CLASSIFICATION = 1 } sm_eprop_loss_t;
typedef enum { SM_EPROP_FB_SYMMETRIC = 0, SM_EPROP_FB_RANDOM = 1 } sm_eprop_feedback_t;

/* The network and its learning rule. Conventions (docs/eprop.md):
 *   v_j,t = alpha v_j,t-1 + sum_i W_in[j,i] x_i,t + sum_i W_rec[j,i] z_i,t-1 - v_th z_j,t-1   (no 1 - alpha factor)
 *   a_j,t = rho a_j,t-1 + z_j,t-1,  A_j,t = v_th + beta_j a_j,t,  z_j,t = H(v_j,t - A_j,t) unless refractory
 *   y_k,t = kappa y_k,t-1 + sum_j W_out[k,j] z_j,t + b_k
 * beta_j is beta for the last n_alif recurrent neurons (ALIF) and 0 for the others (LIF). A spike in step t makes
 * the neuron refractory in steps t+1 .. t+n_ref (z forced to 0, psi = 0); v keeps integrating. */
typedef struct {
    uint32_t n_in, n_rec, n_alif, n_out;
    double dt;          /* ms (> 0) */
    double tau_m;       /* ms, membrane */
    double tau_a;       /* ms, threshold adaptation (ALIF) */
    double tau_out;     /* ms, readout */
    double v_th;        /* mV (> 0), threshold at rest; also the soft-reset step */
    double beta;        /* mV per unit of a: adaptation strength of ALIF neurons */
    double gamma;       /* pseudo-derivative dampening (0.3) */
    uint32_t n_ref;     /* refractory steps after a spike */
    sm_eprop_loss_t loss;
    sm_eprop_feedback_t feedback;
    double c_reg;       /* firing-rate regularization strength (0: off) */
    double f_target_hz; /* its target rate */
    double w_in_scale, w_rec_scale, w_out_scale; /* initial weights: N(0, 1) * scale / sqrt(fan-in) */
    /* Fixed-point mode: 0 keeps float64 (the reference); otherwise traces (ebar, eps) are held in trace_bits-bit
     * signed fixed point of step trace_range / 2^(trace_bits-1), and weights (after each update) in weight_bits-bit
     * fixed point of step weight_range / 2^(weight_bits-1), both with stochastic rounding from sm_philox. */
    uint32_t trace_bits, weight_bits;
    double trace_range, weight_range;
} sm_eprop_params_t;

/* Parameters of the built-in tasks' networks start from these defaults (dt 1 ms, tau_m 20, tau_a 2000, tau_out 20,
 * v_th 0.6, beta 1.8 (ALIF only), gamma 0.3, n_ref 5, regression, symmetric feedback, no regularization). */
void sm_eprop_params_default(sm_eprop_params_t *p);
/* Checks p; SM_EINVAL with "eprop: FIELD: rule broken". */
int sm_eprop_params_check(const sm_eprop_params_t *p, sm_errbuf_t *eb);

/* Weights: row-major, row j holds the synapses onto neuron j (postsynaptic), so a row is one core's synapse block. */
typedef struct {
    sm_eprop_params_t p;
    double *w_in;  /* [n_rec * n_in] */
    double *w_rec; /* [n_rec * n_rec], diagonal always 0 (no autapses) */
    double *w_out; /* [n_out * n_rec] */
    double *b_out; /* [n_out] */
    double *fb;    /* [n_rec * n_out]: B_jk for random feedback (symmetric feedback reads W_out instead) */
    uint64_t seed;
} sm_eprop_net_t;

/* Allocates the weights and draws them from (seed, SM_STREAM_EPROP_INIT). Returns 0, SM_EINVAL or SM_ENOMEM. */
int sm_eprop_net_init(sm_eprop_net_t *net, const sm_eprop_params_t *p, uint64_t seed, sm_errbuf_t *eb);
void sm_eprop_net_free(sm_eprop_net_t *net);
/* Synapses that learn: n_rec * (n_in + n_rec - 1) + n_out * n_rec. */
uint64_t sm_eprop_nsyn(const sm_eprop_params_t *p);

/* One trial: nsteps steps of input spikes x[t * n_in + i] (0 or 1), target[t * n_out + k] (regression: y*;
 * classification: one-hot label) and mask[t] (1: the step counts in the loss; NULL: every step). */
typedef struct {
    uint32_t nsteps;
    const uint8_t *x;
    const double *target;
    const uint8_t *mask;
    /* NULL, or [nsteps * n_rec]: a learning signal L_j,t given from outside that replaces sum_k B_jk err_k (the
     * readout weights still learn from err). */
    const double *learn;
} sm_eprop_trial_t;

/* Operation counters for the energy model. */
typedef struct {
    uint64_t trace_updates;    /* per-synapse trace updates (ebar, and eps for ALIF synapses count twice) */
    uint64_t weight_updates;   /* weights written by the optimizer */
    uint64_t learning_packets; /* learning-signal packets: one multicast packet per readout per step with a
                                * non-zero error (payload err_k, from the readout's core to every recurrent core);
                                * with a learning signal given from outside (trial.learn), one per recurrent
                                * neuron per step */
    uint64_t neuron_updates;   /* recurrent and readout neuron updates */
    uint64_t spikes;           /* recurrent spikes */
} sm_eprop_counters_t;

/* The gradient of one trial or batch, same layout as the weights, plus the eligibility sums of the rate
 * regularizer and the spike counts. */
typedef struct {
    double *g_in, *g_rec, *g_out, *g_b;
    double *esum_in, *esum_rec; /* sum_t e_ji,t (only with c_reg > 0) */
    double *spikes;             /* [n_rec] spikes per neuron */
    double loss;                /* task loss (summed over trials) */
    double correct;             /* classification: trials whose summed readout over the mask picks the label */
    double trials;
    sm_eprop_counters_t ops;
} sm_eprop_grad_t;

int sm_eprop_grad_alloc(sm_eprop_grad_t *g, const sm_eprop_params_t *p);
void sm_eprop_grad_zero(sm_eprop_grad_t *g, const sm_eprop_params_t *p);
void sm_eprop_grad_free(sm_eprop_grad_t *g);
/* dst += src, element by element, in a fixed order (so sums do not depend on threads). */
void sm_eprop_grad_add(sm_eprop_grad_t *dst, const sm_eprop_grad_t *src, const sm_eprop_params_t *p);
/* Turns the sums over trials into the batch gradient: divides by the number of trials and adds the rate
 * regularizer c_reg (fbar_j - f_target) esum_ji / (trials * nsteps). Call once, after the last add. */
void sm_eprop_grad_finish(sm_eprop_grad_t *g, const sm_eprop_params_t *p, uint32_t nsteps);

/* Optional recording of the forward trajectory, [nsteps * n] each, for analysis and the tests (NULL: not kept). */
typedef struct {
    double *v, *a, *psi, *z; /* [nsteps * n_rec] */
    double *y, *err;         /* [nsteps * n_out]: readout and dE/dy_t (the partial, per step) */
    double *learn;           /* [nsteps * n_rec]: the learning signal L_j,t */
} sm_eprop_record_t;

/* Per-thread state and traces of one trial. */
typedef struct sm_eprop_work sm_eprop_work_t;
sm_eprop_work_t *sm_eprop_work_new(const sm_eprop_params_t *p);
void sm_eprop_work_free(sm_eprop_work_t *w);

/* Runs one trial forward from rest with online e-prop: ADDS its gradient sums to g (not yet divided; see
 * sm_eprop_grad_finish). trial_id keys the stochastic rounding of fixed-point mode. rec may be NULL. */
void sm_eprop_trial(const sm_eprop_net_t *net, sm_eprop_work_t *w, const sm_eprop_trial_t *tr, uint32_t trial_id,
                    sm_eprop_grad_t *g, sm_eprop_record_t *rec);

/* Online updates within a trial: fn(ctx, g, steps) is called after every `every` steps (not after the last step)
 * and once more at the trial's end, with g holding the sums of the `steps` steps since the previous call (its
 * loss, correct, trials and ops are added only at the end, with the whole trial's figures). fn applies them to
 * the weights of net (the steps that follow read the new weights; traces and state carry on) and must clear g's
 * gradient sums (sm_eprop_grad_zero). every 0: fn is called only at the end. With fn NULL this is
 * sm_eprop_trial. Its gradient over one trial with every >= nsteps is exactly sm_eprop_trial's. */
typedef void (*sm_eprop_update_fn)(void *ctx, sm_eprop_grad_t *g, uint32_t steps);
void sm_eprop_trial_online(const sm_eprop_net_t *net, sm_eprop_work_t *w, const sm_eprop_trial_t *tr,
                           uint32_t trial_id, sm_eprop_grad_t *g, sm_eprop_record_t *rec, uint32_t every,
                           sm_eprop_update_fn fn, void *ctx);

/* A batch: runs trials[0 .. n) on `threads` threads (0: one per CPU) and leaves the finished batch gradient in g
 * (zeroed first). Trial b's gradient is summed in trial order, so g does not depend on the thread count. */
int sm_eprop_batch(const sm_eprop_net_t *net, const sm_eprop_trial_t *trials, uint32_t n, uint32_t first_id,
                   uint32_t threads, sm_eprop_grad_t *g, sm_errbuf_t *eb);

typedef enum { SM_OPT_SGD = 0, SM_OPT_ADAM = 1 } sm_opt_kind_t;

/* Gradient descent w -= lr g, or Adam (Kingma and Ba 2015):
 *   m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2,  w -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 * then w is clipped to [w_min, w_max] (recurrent and input weights; readouts too). */
typedef struct {
    sm_opt_kind_t kind;
    double lr, beta1, beta2, eps;
    double w_min, w_max; /* bounds (use -INFINITY, INFINITY for none) */
    int train_in, train_rec, train_out;
    uint64_t t;          /* steps taken */
    double *m, *v;       /* Adam moments over every parameter, in the order in, rec, out, bias */
} sm_opt_t;

int sm_opt_init(sm_opt_t *o, sm_opt_kind_t kind, double lr, const sm_eprop_params_t *p);
void sm_opt_free(sm_opt_t *o);
/* One update of every trained weight from g; counts the weights written in ops (may be NULL). */
void sm_opt_step(sm_opt_t *o, sm_eprop_net_t *net, const sm_eprop_grad_t *g, sm_eprop_counters_t *ops);
/* The update rule on a flat array (what sm_opt_step applies to each parameter block); m and v are the moments of
 * those n parameters, t the step number after this update (>= 1). */
void sm_opt_apply(const sm_opt_t *o, uint64_t t, double *w, const double *g, double *m, double *v, uint64_t n);

/* On-chip memory: bytes a recurrent neuron's synapse block needs beside its weights for the traces
 * (ebar per synapse, eps per synapse of an ALIF neuron, zbar per presynaptic neuron, 2 gradient accumulators
 * counted as one word each), at trace_bits (or 32 bits in float mode) per word. */
uint64_t sm_eprop_trace_bytes(const sm_eprop_params_t *p, uint32_t neuron);

#ifdef __cplusplus
}
#endif
#endif
