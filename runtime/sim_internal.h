/* runtime/sim_internal.h: the simulation object's layout, shared by the runtime's own files. */
#ifndef SPIKEMESH_SIM_INTERNAL_H
#define SPIKEMESH_SIM_INTERNAL_H

#include <stdio.h>
#include <uv.h>

#include "spikemesh/runtime.h"

#define SM__NOUT 3 /* spikes.csv, traffic.json, summary.json */

struct sm_sim {
    const sm_deploy_t *d;
    const sm_net_t *net;
    sm_run_opts_t opts;

    /* neuron state, structure of arrays indexed by global neuron id */
    double *v;   /* mV */
    double *ge;  /* mV */
    double *gi;  /* mV */
    int32_t *ref; /* steps left in the refractory period */
    float *acc;  /* delay ring buffers: [2 (exc, inh)][R slots][n] mV */
    uint32_t R;  /* ring slots = longest delay */
    sm_lif_consts_t *consts; /* per population */
    double *p_spike;         /* per population: Poisson spike probability per step */

    uint32_t *spk; /* spikes of the current step */
    uint32_t nspk;
    uint64_t step, nsteps;

    /* counters not yet folded into the mesh and core counters */
    uint64_t *piece_pending;
    uint64_t *neuron_pending;
    uint64_t *pop_spikes;
    sm_core_counters_t *cc;
    sm_stats_t stats;

    /* loop */
    uv_loop_t loop;
    uv_idle_t idle;
    uv_timer_t pace, progress;
    uv_signal_t sigint, sigterm;
    uint64_t t0_ns;
    int stop, finished, show_progress;

    /* outputs: written as NAME.part, renamed when complete */
    FILE *spikes_f;
    char *out_part[SM__NOUT];
    char *out_final[SM__NOUT];
};

void sm__fold(sm_sim_t *s);
int sm__out_open(sm_sim_t *s, sm_errbuf_t *eb);
void sm__out_spikes(sm_sim_t *s, uint64_t step, const uint32_t *ids, uint32_t n);
int sm__out_finish(sm_sim_t *s, sm_errbuf_t *eb);
void sm__out_abort(sm_sim_t *s);

#endif
