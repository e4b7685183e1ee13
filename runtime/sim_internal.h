/* runtime/sim_internal.h: the simulation object's layout, shared by the runtime's own files. */
#ifndef SPIKEMESH_SIM_INTERNAL_H
#define SPIKEMESH_SIM_INTERNAL_H

#include <stdatomic.h>
#include <stdio.h>
#include <uv.h>

#include "spikemesh/runtime.h"

#define SM__NOUT 8 /* spikes.csv, traffic.json, summary.json, raster.svg, traffic.svg, spikes.vcd, trace.json,
                   * latency.csv */
#define SM__RASTER_MAX 400000u   /* spikes drawn in raster.svg at most */
#define SM__VCD_MAX 5000000u     /* spike events written to spikes.vcd at most */
#define SM__TRACE_STEPS 200u     /* steps traced in trace.json */
#define SM__TRACE_CORES 64u      /* cores traced in trace.json */

typedef struct {
    uint64_t step;
    uint32_t id;
} sm__ev_t;

typedef struct {
    uint64_t step;
    double core_ns, drain_ns, barrier_ns; /* slowest core, mesh drain, barrier */
    uint64_t packets, hops;
} sm__trace_step_t;

/* What trace.json and latency.csv show: the first steps of the timing model, the cycle model's latencies. */
typedef struct {
    uint64_t max_steps, nsteps;
    uint32_t ncores;      /* cores traced */
    sm__trace_step_t *steps;
    double *core_ns;      /* [max_steps][ncores] */
    uint64_t *lat_hist;   /* deliveries by latency in cycles */
    uint64_t nlat;
} sm__trace_t;
#define SM__ENERGY_KINDS SM_ENERGY_KINDS
#define SM__SPIKED 0x80000000u /* in synin: the neuron spiked this step */

typedef struct sm__timing sm__timing_t;

/* The barrier of the one synchronisation per step: it spins for a few microseconds (a blocking barrier costs
 * that much on every step), then sleeps, so that a thread whose partner lost its CPU to other work does not
 * burn the CPU the partner needs. */
typedef struct {
    _Atomic uint32_t count;
    _Atomic uint32_t sense;
    _Atomic uint32_t sleepers;
    uint32_t n;
    uv_mutex_t mu;
    uv_cond_t cv;
    int ready; /* mu and cv initialised */
} sm__spin_barrier_t;

/* Where a source neuron's synapses onto one worker's neurons lie in that worker's delivery words. A row whose
 * synapses all carry one weight holds only their targets (one word each, as sm_syn_t.tgt) and the weight is w;
 * any other row holds (tgt, weight bits) pairs. */
typedef struct {
    uint64_t off;   /* first word */
    uint32_t count; /* synapses; SM__DROW_PAIRS set: pairs */
    float w;        /* the weight of a one-weight row */
} sm__drow_t;
#define SM__DROW_PAIRS 0x80000000u

/* --profile's histogram of step phase times: SM__PROF_PER_OCTAVE bins per doubling of nanoseconds (2% wide) */
#define SM__PROF_PER_OCTAVE 32u
#define SM__PROF_BINS (40u * SM__PROF_PER_OCTAVE)

/* A worker thread owns a contiguous range of population pieces (whole cores), hence a contiguous range of
 * neurons: it applies to them the synapses of every spike, and it updates them, give or take the border: between
 * batches of steps the balancer (sm__rebalance) may hand the cores at the end of one worker's range to its
 * neighbour, which then updates them once their owner has routed into them (see docs/runtime.md). */
typedef struct {
    _Alignas(64) struct sm_sim *s; /* workers lie in one array: each starts a cache line of its own */
    uint32_t id;
    uint32_t piece_lo, piece_hi; /* pieces [lo, hi) */
    uint32_t qlo, qhi;           /* pieces it updates in this batch: [qlo, qhi) */
    uint32_t qmin, qmax;         /* how far qlo and qhi may move: to the middle of each neighbour's range */
    uint32_t *runs;              /* the pieces it updates, neighbouring pieces of one population merged: (pop, first,
                                  * count); first those it took from its left neighbour, then its own, then those
                                  * from its right neighbour */
    uint32_t nruns, nruns_left, nruns_own;
    sm_refq_t *refq;             /* [nruns]: each run's refractory neurons (lif runs stepped by sm_core_lifq_step) */
    uint32_t *refq_mem;          /* their storage: 2 x the most neurons it may update */
    uint32_t post_lo, post_hi;   /* neurons [lo, hi) (those of pieces [piece_lo, piece_hi)) */
    uint32_t *dword;             /* the words of the delivery rows onto these neurons, rows in source order */
    sm__drow_t *srec[2];         /* by step parity: for each of its spikes, the spiking neuron's delivery rows
                                  * (all workers'), copied here so that the route reads them in order */
    uint32_t *spk[2];            /* spikes of the neurons it updated, by step parity */
    uint32_t nspk[2];
    uint64_t ops;                /* synaptic events applied */
    double prof[3];              /* --profile: seconds in update, route, record and wait */
    uint64_t *prof_hist;         /* --profile: [4][SM__PROF_BINS] steps by time in each phase, then whole steps,
                                  * log scale */
    uint64_t *prof_slow_ns;      /* --profile: [SM__PROF_BINS] nanoseconds the whole steps in each bin took */
    uint32_t sense;              /* barrier sense */
    uv_sem_t go;                 /* posted when a batch starts (or the worker must leave) */
    int started;
    uv_thread_t thread;
    uint64_t bal_ns[2];          /* the balancer: ns updating (waits left out), ns from the barrier to the end of the
                                  * route, since it last looked */
    uint64_t bal_neurons, bal_steps; /* neuron updates and steps in that time */
    double bal_per_neuron;       /* its last estimates of this worker's ns per neuron update, */
    double bal_route;            /* and of its ns per step from the barrier to the end of its route */
    double bal_gain;             /* the fraction of the way its right border last moved (0: not yet) */
    int bal_dir;                 /* which way it moved: +1 right, -1 left, 0 never */
    int bal_seen;                /* which way the balancer last saw a large imbalance at it (0: none) */
    _Alignas(64) _Atomic uint64_t routed; /* steps whose route this worker has finished (and counted): the inputs
                                  * of step `routed` onto its neurons are complete; alone in its cache line */
} sm__worker_t;

/* How the balancer moves the borders between the workers' ranges (sm_run_opts_t.split). */
enum { SM__SPLIT_OFF, SM__SPLIT_ADAPT, SM__SPLIT_SHUFFLE };

struct sm_sim {
    const sm_deploy_t *d;
    const sm_net_t *net;
    sm_run_opts_t opts;

    /* neuron state, structure of arrays indexed by global neuron id; double or float (opts.single) */
    void *v;      /* mV */
    void *ge;     /* mV */
    void *gi;     /* mV */
    int32_t *ref; /* refractory counter: ref_steps + 1 after a spike, down to 0 */
    void *acc;    /* delay ring buffers [2 (exc, inh)][R slots][n] mV; NULL when every delay is one step */
    uint32_t R;   /* ring slots = longest delay */
    sm_lif_consts_t *consts; /* per population */
    double *p_spike;         /* per population: Poisson spike probability per step */

    uint32_t *spk; /* spikes of the last step, merged (sm_sim_step) */
    uint32_t nspk;
    uint64_t step, nsteps;

    /* workers: worker 0 is the thread that runs the loop */
    uint32_t nworkers;
    sm__worker_t *workers;
    sm__drow_t *drow;    /* [n][nworkers]: each source's delivery row onto each worker's neurons */
    double *thread_prof; /* --profile: [3][nworkers][3]: totals, medians per step, slow steps (sm_sim_stats) */
    sm__spin_barrier_t step_barrier;
    uint64_t batch;      /* steps in the batch being run */
    uint64_t next_batch; /* steps in the next batch the loop runs */
    int split;           /* SM__SPLIT_*: what the balancer does between batches */
    uint64_t shuffle;    /* SM__SPLIT_SHUFFLE: its random state */
    uint64_t bal_t0;     /* SM__SPLIT_ADAPT: when the balancer last looked (uv_hrtime) */
    uint32_t *core_q;    /* the first piece of every core, in order, then npieces: where a border may lie */
    uint32_t ncore_q;
    uint32_t *thread_neurons; /* [nworkers]: neurons each worker updates (sm_sim_stats) */
    int quit;       /* workers leave */
    _Atomic uint64_t batches; /* batches started (and the exit): a worker spins on it before it sleeps */
    int spin_between;    /* workers spin between batches (no more threads than CPUs) */

    /* timing model (--timing): events received per neuron this step, per-core counts by step parity */
    sm__timing_t *tm;
    uint32_t *synin;
    uint64_t *step_active[2], *step_synops[2];

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

    /* captures for the pictures (with an output directory) */
    sm__ev_t *raster_ev;
    uint64_t nraster, raster_cap;
    int raster_truncated;
    uint32_t *raster_rows; /* per population: its first neurons drawn */
    uint32_t *probes;      /* neurons in spikes.vcd, increasing */
    uint32_t nprobes;
    sm__ev_t *vcd_ev;      /* (step, probe index) */
    uint64_t nvcd, vcd_cap;
    int vcd_truncated;
    sm__trace_t trace;

    /* outputs: written as NAME.part, renamed when complete */
    FILE *spikes_f;
    char *out_part[SM__NOUT];
    char *out_final[SM__NOUT];
    int out_on[SM__NOUT];
    int out_made; /* the run created the --out directory: a failed run removes it again (when empty) */
    int signals_ignored; /* SIGINT and SIGTERM are ignored from the end of the loop until the outputs are written */
};

/* The first neuron of piece q (d->n for q = npieces). */
static inline uint32_t sm__q_first(const sm_sim_t *s, uint32_t q)
{
    return q < s->d->npieces ? s->d->pieces[q].first : s->d->n;
}

/* The neurons worker w updates in this batch. */
static inline uint32_t sm__worker_neurons(const sm_sim_t *s, uint32_t w)
{
    return sm__q_first(s, s->workers[w].qhi) - sm__q_first(s, s->workers[w].qlo);
}

void sm__fold(sm_sim_t *s);
void sm__signals_back(sm_sim_t *s);
/* For tests: one window of made-up measurements for the balancer (per worker: ns per neuron update, ns of route
 * per step, over `steps` steps), which then moves the borders as in a run with --split adapt. */
void sm__balance_window(sm_sim_t *s, const double *per_neuron, const double *route, uint64_t steps);
/* For tests: --profile's slow steps from a histogram of whole steps (h, and the nanoseconds ns those in each bin
 * took) of `steps` steps: out[0] the median step's seconds, out[1] the slow steps, out[2] their seconds beyond it. */
void sm__prof_slow(const uint64_t *h, const uint64_t *ns, uint64_t steps, double out[3]);
int sm__timing_create(sm_sim_t *s, sm_errbuf_t *eb);
void sm__timing_destroy(sm__timing_t *t);
void sm__timing_mesh(sm_sim_t *s, uint64_t step, uint32_t parity);
void sm__timing_cores(sm_sim_t *s, uint32_t parity);
void sm__capture(sm_sim_t *s, uint64_t step, const uint32_t *ids, uint32_t n);
int sm__write_raster(sm_sim_t *s, const char *path);
int sm__write_traffic_svg(sm_sim_t *s, const char *path);
int sm__write_vcd(sm_sim_t *s, const char *path);
int sm__write_trace(sm_sim_t *s, const char *path);
int sm__write_latency(sm_sim_t *s, const char *path);
int sm__out_open(sm_sim_t *s, sm_errbuf_t *eb);
void sm__out_spikes(sm_sim_t *s, uint64_t step, const uint32_t *ids, uint32_t n);
int sm__out_finish(sm_sim_t *s, sm_errbuf_t *eb);
void sm__out_abort(sm_sim_t *s);

#endif
