/* spikemesh/core.h: what one simulated neuromorphic core holds and does: LIF neurons (CUBA and variants) and spike
 * sources with structure-of-arrays state, synapse words, delay ring buffers and operation counters. */
#ifndef SPIKEMESH_CORE_H
#define SPIKEMESH_CORE_H

#include <stdint.h>

#include "spikemesh/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the user gives for a LIF population (Brette et al. 2007 CUBA form):
 *   tau_m dv/dt = (v_rest + i_bias - v) + ge + gi,  tau_e dge/dt = -ge,  tau_i dgi/dt = -gi
 * A spike when v > v_thresh; then v = v_reset and v is held for t_ref. */
typedef struct {
    double tau_m;    /* ms, membrane time constant (> 0) */
    double tau_e;    /* ms, excitatory synaptic time constant (> 0) */
    double tau_i;    /* ms, inhibitory synaptic time constant (> 0) */
    double v_thresh; /* mV */
    double v_reset;  /* mV */
    double v_rest;   /* mV, leak reversal potential (E_l) */
    double t_ref;    /* ms, refractory period (>= 0) */
    double i_bias;   /* mV, constant drive R*I; the membrane relaxes towards v_rest + i_bias */
    /* Variants used by imported (NIR) neurons, see docs/nir.md; all zero keeps the CUBA model above, integrated
     * by the CUBA kernel bit for bit. A per-neuron drive (sm_pop_t.drive, mV) adds to i_bias, except that with
     * exponential synapses (delta == 0) it is a constant input to ge: tau_e dge/dt = drive - ge + inputs. */
    uint8_t delta;     /* 1: no synaptic current: a spike of weight w mV moves v by w at once (tau_e, tau_i unused) */
    uint8_t no_leak;   /* 1: no leak: tau_m dv/dt = i_bias + ge + gi (v_rest unused); an integrator */
    uint8_t no_spike;  /* 1: never spikes (v_thresh, v_reset and t_ref unused): a read-out integrator */
    uint8_t stateless; /* 1: v = v_rest + i_bias + the weights arriving in the step; nothing carries over
                        * (tau_m unused; needs delta) */
} sm_lif_params_t;

/* Derived constants: the exact propagators of the linear system over one step dt (as Brian2's
 * method='exact'). Computed once per population. */
typedef struct {
    double pm;       /* exp(-dt/tau_m) */
    double pe;       /* exp(-dt/tau_e) */
    double pi;       /* exp(-dt/tau_i) */
    double ce;       /* mV per mV: contribution of ge(t) to v(t+dt) */
    double ci;       /* mV per mV: contribution of gi(t) to v(t+dt) */
    double v_inf;    /* mV: v_rest + i_bias */
    double v_thresh; /* mV */
    double v_reset;  /* mV */
    int32_t ref_steps; /* round(t_ref / dt): steps a neuron stays refractory, the spike step included */
    /* The general form, used by sm_core_lifx_step* when `general` is set (any variant above) or the population has
     * a per-neuron drive:
     *   h = ge + in_e - dsyn * drive                        (the part of ge that decays freely)
     *   v' = pm * v + cu * (v_base + drive) + ce * h + ci * (gi + in_i)
     *   ge' = dsyn * drive + pe * h,  gi' = pi * (gi + in_i) */
    int32_t general;   /* 1: a variant is set: step with sm_core_lifx_step* */
    int32_t spiking;   /* 0: never spikes */
    double cu;         /* weight of the steady drive: 1 - pm with a leak, dt / tau_m without, 1 when stateless */
    double v_base;     /* mV: v_rest + i_bias with a leak or stateless, i_bias without a leak */
    double dsyn;       /* 1: the per-neuron drive enters through ge (exponential synapses), 0: through v */
    /* A hint for the sm_core_lifq_step*_direct kernels, set by the caller (sm_lif_consts sets 0): 1 when the
     * state they sweep is larger than the core's L2 but lies in the L3, where prefetching v, ge and gi ahead in
     * software makes the sweep faster. The results are the same either way. */
    int32_t prefetch;
} sm_lif_consts_t;

/* Fills c from p for step dt (ms). Returns 0, or SM_EINVAL when a constant is not finite or out of range. */
int sm_lif_consts(const sm_lif_params_t *p, double dt, sm_lif_consts_t *c, sm_errbuf_t *eb);

/* The refractory neurons of one range, for the sm_core_lifq_step kernels: a queue of (index in the range, step
 * (mod 2^32) in which it is free again), in spike order. A neuron is queued at most once, so cap = the range's
 * size is enough; start empty (head = len = 0). */
typedef struct {
    uint32_t *idx, *until; /* [cap] */
    uint32_t cap, head, len;
} sm_refq_t;

/* Steps neurons [0, n) of one population piece by one step: adds the inputs that arrived for this step
 * (in_e, in_i, then cleared), integrates exactly, applies threshold, reset and refractoriness (the step of
 * docs/network-format.md). Spiking neurons are written to spikes[] as base + index, in increasing order; returns
 * their count. Refractory neurons are kept in q, not in a counter per neuron, so the vector loop reads and writes
 * only v, ge and gi; while a neuron is refractory (ref_steps >= 2) its v holds -inf (NaN when pm is 0) instead of
 * v_reset. step is the step being computed (steps must follow each other). _direct variants take no input
 * buffers (inputs were added to ge, gi directly: every delay is one step); _f32 variants keep the state in single
 * precision. */
uint32_t sm_core_lifq_step(const sm_lif_consts_t *c, uint32_t n, double *restrict v, double *restrict ge,
                           double *restrict gi, double *restrict in_e, double *restrict in_i, sm_refq_t *q,
                           uint64_t step, uint32_t base, uint32_t *restrict spikes);
uint32_t sm_core_lifq_step_direct(const sm_lif_consts_t *c, uint32_t n, double *restrict v, double *restrict ge,
                                  double *restrict gi, double *restrict in_e, double *restrict in_i, sm_refq_t *q,
                                  uint64_t step, uint32_t base, uint32_t *restrict spikes);
uint32_t sm_core_lifq_step_f32(const sm_lif_consts_t *c, uint32_t n, float *restrict v, float *restrict ge,
                               float *restrict gi, float *restrict in_e, float *restrict in_i, sm_refq_t *q,
                               uint64_t step, uint32_t base, uint32_t *restrict spikes);
uint32_t sm_core_lifq_step_f32_direct(const sm_lif_consts_t *c, uint32_t n, float *restrict v, float *restrict ge,
                                      float *restrict gi, float *restrict in_e, float *restrict in_i, sm_refq_t *q,
                                      uint64_t step, uint32_t base, uint32_t *restrict spikes);

/* The vector loop of the sm_core_lifq_step* kernels: "avx512" or "avx2" (written by hand), or "c" (the portable
 * loop, which the compiler vectorises for the CPU). Every one gives the same bits. sm_core_simd_limit caps the
 * choice at a level (2 AVX-512, 1 AVX2, 0 the C loop; the CPU's own support still applies) and returns the
 * previous cap; spikemesh reads the SPIKEMESH_SIMD environment variable into it. */
const char *sm_core_simd(void);
int sm_core_simd_limit(int level);

/* The same step for populations with a variant set (c->general), in the general form above, with refractoriness
 * in a counter per neuron (ref: ref_steps + 1 right after a spike, counting down to 0). drive is the per-neuron
 * drive of these n neurons (mV), or NULL for none. */
uint32_t sm_core_lifx_step(const sm_lif_consts_t *c, const double *restrict drive, uint32_t n, double *restrict v,
                           double *restrict ge, double *restrict gi, int32_t *restrict ref, double *restrict in_e,
                           double *restrict in_i, uint32_t base, uint32_t *restrict spikes);
uint32_t sm_core_lifx_step_direct(const sm_lif_consts_t *c, const double *restrict drive, uint32_t n,
                                  double *restrict v, double *restrict ge, double *restrict gi, int32_t *restrict ref,
                                  double *restrict in_e, double *restrict in_i, uint32_t base,
                                  uint32_t *restrict spikes);
uint32_t sm_core_lifx_step_f32(const sm_lif_consts_t *c, const double *restrict drive, uint32_t n, float *restrict v,
                               float *restrict ge, float *restrict gi, int32_t *restrict ref, float *restrict in_e,
                               float *restrict in_i, uint32_t base, uint32_t *restrict spikes);
uint32_t sm_core_lifx_step_f32_direct(const sm_lif_consts_t *c, const double *restrict drive, uint32_t n,
                                      float *restrict v, float *restrict ge, float *restrict gi,
                                      int32_t *restrict ref, float *restrict in_e, float *restrict in_i,
                                      uint32_t base, uint32_t *restrict spikes);

/* One spike to replay: in step `step`, neuron `neuron` (index within its population) spikes. */
typedef struct {
    uint64_t step;
    uint32_t neuron;
} sm_input_spike_t;

/* Spike source piece: emits the spikes of ev[0 .. nev) (sorted by step, then neuron) that fall in step `step`
 * and on local neurons [lo, lo + n), as global ids base + (neuron - lo), in increasing order; returns their count.
 * Reads ev only, so any number of pieces may run at once. */
uint32_t sm_core_source_step(const sm_input_spike_t *ev, uint64_t nev, uint64_t step, uint32_t lo, uint32_t n,
                             uint32_t base, uint32_t *restrict spikes);

/* Poisson source piece: neuron base+i spikes in step `step` when its Philox draw is below p_spike. */
uint32_t sm_core_poisson_step(double p_spike, uint64_t seed, uint32_t n, uint32_t base, uint64_t step,
                              uint32_t *restrict spikes);

/* One synapse as stored in synapse memory: 8 bytes.
 * tgt bits 0..24: postsynaptic neuron (global id); bits 25..30: delay - 1 in steps; bit 31: inhibitory. */
typedef struct {
    uint32_t tgt;
    float w; /* mV, added to ge (excitatory) or gi (inhibitory) */
} sm_syn_t;

#define SM_SYN_POST_BITS 25u
#define SM_SYN_MAX_NEURONS (1u << SM_SYN_POST_BITS)
#define SM_SYN_MAX_DELAY 64u
#define SM_SYN_POST(t) ((t) & (SM_SYN_MAX_NEURONS - 1u))
#define SM_SYN_DELAY(t) ((((t) >> SM_SYN_POST_BITS) & 63u) + 1u)
#define SM_SYN_INH(t) ((t) >> 31)
#define SM_SYN_PACK(post, delay, inh) \
    ((uint32_t)(post) | ((uint32_t)((delay) - 1u) << SM_SYN_POST_BITS) | ((uint32_t)(inh) << 31))

/* One core of the chip after placement: a contiguous range of global neuron ids. */
typedef struct {
    uint32_t first;     /* first global neuron id */
    uint32_t count;     /* neurons on this core */
    uint32_t tile;      /* tile (router) index: y * width + x */
    uint32_t slot;      /* core index within its tile */
    uint64_t synapses;  /* synapses whose postsynaptic neuron is on this core */
    uint64_t syn_bytes; /* synapse memory used, bytes */
    uint32_t fan_in;    /* distinct presynaptic neurons */
    uint32_t fan_out;   /* distinct (neuron, destination core) pairs leaving this core */
} sm_core_t;

/* Operation counters of one core, for profiling and, later, the energy model. */
typedef struct {
    uint64_t neuron_updates; /* neuron state updates */
    uint64_t synaptic_ops;   /* synaptic events applied to this core's neurons */
    uint64_t spikes_sent;    /* spikes emitted (packets injected at this core's router) */
    uint64_t packets_in;     /* packets delivered to this core by its router */
    uint64_t active_updates; /* neuron updates with input or a spike (with the timing model on) */
} sm_core_counters_t;

#ifdef __cplusplus
}
#endif
#endif
