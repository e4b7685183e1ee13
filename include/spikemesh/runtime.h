/* spikemesh/runtime.h: the simulation object: a libuv loop that drives timesteps (deliver, update, route) over
 * a deployment, with real-time pacing, signal handling, progress display, recorders and output files. */
#ifndef SPIKEMESH_RUNTIME_H
#define SPIKEMESH_RUNTIME_H

#include <stdint.h>

#include "spikemesh/common.h"
#include "spikemesh/core.h"
#include "spikemesh/loader.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The default number of worker threads is one per CPU, but no more than one per this many neurons: a step of
 * fewer neurons a thread is too short to pay for the threads' synchronisation. */
#define SM_NEURONS_PER_THREAD 16384u

typedef struct {
    double duration;     /* ms of biological time */
    int realtime;        /* 1: one step per dt of wall time */
    int progress;        /* -1: when stderr is a terminal, 0: never, 1: always */
    const char *out_dir; /* NULL: write no files */
    int handle_signals;  /* 1: SIGINT/SIGTERM stop the run at the end of the current step */
    uint32_t threads;    /* worker threads (0: one per CPU, at most one per SM_NEURONS_PER_THREAD neurons); results
                          * do not depend on it */
    int single;          /* 1: neuron state in single precision (float), 0: double */
    int profile;         /* 1: time each phase (update, route, record) */
    int timing;          /* 1: model each step's time and energy on the chip */
    int mesh_cycle;      /* 1: the mesh part of that model from the cycle-level mesh (implies timing) */
    int split;           /* how the neurons to update are split between the threads; results do not depend on it:
                          * SM_SPLIT_ADAPT (0, the default): between batches of steps, cores at the borders move
                          * toward the threads that finish their steps sooner (when there are no more threads than
                          * CPUs; otherwise fixed); SM_SPLIT_FIXED: as first assigned (equal work);
                          * SM_SPLIT_SHUFFLE: borders moved at random after every batch (for tests) */
} sm_run_opts_t;
enum { SM_SPLIT_ADAPT = 0, SM_SPLIT_FIXED = 1, SM_SPLIT_SHUFFLE = 2 };

/* Energy by kind of operation. */
enum {
    SM_ENERGY_NEURON_ACTIVE, SM_ENERGY_NEURON_IDLE, SM_ENERGY_SYN_OP, SM_ENERGY_SPIKE_TILE, SM_ENERGY_HOP_EW,
    SM_ENERGY_HOP_NS, SM_ENERGY_HOP_CHIP, SM_ENERGY_STATIC, SM_ENERGY_KINDS
};

/* One modelled step: total = slowest core + mesh drain + barrier. */
typedef struct {
    uint64_t step;
    double total_ns, core_ns, drain_ns, barrier_ns;
    uint32_t core; /* the slowest core */
} sm_timing_step_t;

/* The modelled time and energy of a run (--timing). */
typedef struct {
    int cycle_model;                 /* mesh drain from the cycle-level model (else zero-load) */
    uint64_t steps;
    double total_ns, mean_ns, min_ns, p50_ns, p99_ns, max_ns, barrier_ns;
    uint64_t core_bound_steps;       /* steps whose slowest core took longer than the mesh drain */
    uint64_t mesh_bound_steps;
    uint64_t steps_over_dt;          /* steps a chip running in real time would overrun */
    double energy_pj[SM_ENERGY_KINDS], total_energy_pj;
    sm_timing_step_t slowest[5];     /* the slowest steps, slowest first */
    uint32_t nslowest;
    const double *core_busy_ns;      /* per core: modelled compute time */
    const double *core_energy_pj;    /* per core: neuron and synapse energy */
    const sm_noc_t *noc;             /* the cycle-level mesh (its port counters), or NULL */
} sm_timing_t;

/* Totals after a run (or so far). */
typedef struct {
    uint64_t steps;          /* steps simulated */
    uint64_t spikes;         /* spikes in all */
    uint64_t packets;        /* packets injected (one per spike that has listeners) */
    uint64_t hops;           /* link traversals of all packets */
    uint64_t deliveries;     /* packets delivered to cores */
    uint64_t synaptic_ops;   /* synaptic events applied */
    uint64_t neuron_updates; /* neuron state updates */
    uint64_t overruns;       /* --realtime: steps that finished after their deadline */
    double setup_seconds;    /* set by the caller: time to build the deployment and the simulation */
    double loop_seconds;     /* the simulation loop alone */
    int interrupted;         /* stopped by SIGINT or SIGTERM */
    int signal;              /* which */
    uint32_t threads;        /* worker threads used */
    double phase_seconds[3]; /* --profile: update, route, record (thread 0's wall time in each) */
    const double *thread_phase_seconds; /* --profile: [threads][3], the same for every thread (NULL without) */
    const double *thread_phase_median;  /* --profile: [threads][3], the median step's seconds in each phase
                                         * (within 2%): unlike the totals, not moved by a few slow steps */
    const uint32_t *thread_neurons;     /* [threads]: neurons each thread updates now (see sm_run_opts_t.split) */
    const double *thread_slow_steps;    /* --profile: [threads][3]: the median whole step's seconds, the steps that
                                         * took SM_PROFILE_SLOW_FACTOR x that or more (within 2%), whatever held
                                         * them up, and the seconds they took beyond the median (NULL without) */
} sm_stats_t;

/* --profile counts a step as slow when it takes this many times the median step or more */
#define SM_PROFILE_SLOW_FACTOR 4.0

typedef struct sm_sim sm_sim_t;

/* Creates the simulation: neuron state from the deployment (initial values drawn from the seed), delay
 * buffers, counters; opens the output files (written to temporary names and renamed when complete).
 * Returns 0, or a negative code with a message (an unwritable --out directory, out of memory). */
int sm_sim_create(sm_sim_t **out, const sm_deploy_t *d, const sm_run_opts_t *opts, sm_errbuf_t *eb);

/* Runs the loop until the duration has elapsed or a signal arrives, then finishes the outputs. */
int sm_sim_run(sm_sim_t *s, sm_errbuf_t *eb);

/* Advances one step outside the loop (for tests and embedding); returns the number of spikes. */
uint32_t sm_sim_step(sm_sim_t *s);

/* Folds pending traffic into the mesh and core counters; returns the totals. */
const sm_stats_t *sm_sim_stats(sm_sim_t *s);
const sm_core_counters_t *sm_sim_core_counters(sm_sim_t *s);
/* Spikes per population so far. */
const uint64_t *sm_sim_pop_spikes(const sm_sim_t *s);
/* Spikes of the last step (global neuron ids, increasing). */
const uint32_t *sm_sim_last_spikes(const sm_sim_t *s, uint32_t *n);
/* Neuron state of neuron `id` (global id): membrane potential and synaptic variables, mV. When every delay of
 * the network is one step, the spikes of the last step are added straight into ge and gi, so these already
 * hold the input that arrives in the next step; with longer delays that input waits in the delay buffers. */
double sm_sim_v(const sm_sim_t *s, uint32_t id);
double sm_sim_ge(const sm_sim_t *s, uint32_t id);
double sm_sim_gi(const sm_sim_t *s, uint32_t id);
uint64_t sm_sim_now(const sm_sim_t *s);
/* The modelled time and energy so far; SM_EINVAL when the run has no timing model. */
int sm_sim_timing(sm_sim_t *s, sm_timing_t *out);
/* The run's summary as JSON text (malloc'd; NULL when out of memory), indented or on one line. */
char *sm_sim_summary_json(sm_sim_t *s, int indent);
/* Records the deployment's build time for the summary. */
void sm_sim_set_setup_seconds(sm_sim_t *s, double secs);
/* Writes traffic.json and summary.json, then moves all outputs into place (no-op without --out). */
int sm_sim_write_outputs(sm_sim_t *s, sm_errbuf_t *eb);
/* traffic.json's text (malloc'd; NULL when out of memory) for a deployment's mesh counters and per-core counters
 * cc[ncores], without a timing model's figures: what tools other than run (spikemesh train) write. */
char *sm_traffic_json_text(const sm_deploy_t *d, const sm_core_counters_t *cc);
/* Frees the simulation; output files not moved into place are removed. */
void sm_sim_destroy(sm_sim_t *s);

#ifdef __cplusplus
}
#endif
#endif
