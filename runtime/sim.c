/* runtime/sim.c: the simulation object: neuron state, delay buffers and counters over a deployment, the
 * timestep phases (deliver, update, route) and the libuv loop that schedules them. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "runtime/sim_internal.h"

static void sm__free_state(sm_sim_t *s)
{
    free(s->v);
    free(s->ge);
    free(s->gi);
    free(s->ref);
    free(s->acc);
    free(s->consts);
    free(s->p_spike);
    free(s->spk);
    free(s->piece_pending);
    free(s->neuron_pending);
    free(s->pop_spikes);
    free(s->cc);
}

int sm_sim_create(sm_sim_t **out, const sm_deploy_t *d, const sm_run_opts_t *opts, sm_errbuf_t *eb)
{
    const sm_net_t *net = d->net;
    size_t n = d->n ? d->n : 1;
    int rc;
    *out = NULL;
    if (!(opts->duration >= 0.0) || !isfinite(opts->duration))
        return sm_errorf(eb, SM_EINVAL, "--duration must be zero or a positive number of ms");
    double steps = floor(opts->duration / net->dt + 1e-9);
    if (steps > 1e12)
        return sm_errorf(eb, SM_ERANGE, "--duration %g ms is %.3g steps of %g ms; at most 1e12 are supported",
                         opts->duration, steps, net->dt);
    sm_sim_t *s = calloc(1, sizeof *s);
    if (!s)
        return sm_errorf(eb, SM_ENOMEM, "out of memory");
    s->d = d;
    s->net = net;
    s->opts = *opts;
    s->nsteps = (uint64_t)steps;
    s->R = d->max_delay;
    s->v = malloc(n * sizeof *s->v);
    s->ge = calloc(n, sizeof *s->ge);
    s->gi = calloc(n, sizeof *s->gi);
    s->ref = calloc(n, sizeof *s->ref);
    s->acc = calloc(2 * (size_t)s->R * n, sizeof *s->acc);
    s->consts = calloc(net->npops, sizeof *s->consts);
    s->p_spike = calloc(net->npops, sizeof *s->p_spike);
    s->spk = malloc((n + 1) * sizeof *s->spk);
    s->piece_pending = calloc(d->npieces ? d->npieces : 1, sizeof *s->piece_pending);
    s->neuron_pending = calloc(n, sizeof *s->neuron_pending);
    s->pop_spikes = calloc(net->npops, sizeof *s->pop_spikes);
    s->cc = calloc(d->ncores ? d->ncores : 1, sizeof *s->cc);
    if (!s->v || !s->ge || !s->gi || !s->ref || !s->acc || !s->consts || !s->p_spike || !s->spk ||
        !s->piece_pending || !s->neuron_pending || !s->pop_spikes || !s->cc) {
        sm__free_state(s);
        free(s);
        return sm_errorf(eb, SM_ENOMEM, "out of memory for the state of %u neurons", d->n);
    }
    for (uint32_t p = 0; p < net->npops; p++) {
        const sm_pop_t *pop = &net->pops[p];
        if ((rc = sm_lif_consts(&pop->lif, net->dt, &s->consts[p], eb)) != 0) {
            char msg[SM_ERRBUF_SIZE];
            snprintf(msg, sizeof msg, "%s", eb ? eb->msg : "");
            sm__free_state(s);
            free(s);
            return sm_errorf(eb, rc, "population '%s': %s", pop->name, msg);
        }
        s->p_spike[p] = pop->model == SM_MODEL_POISSON ? pop->rate_hz * net->dt * 1e-3 : 0.0;
        /* Initial v: uniform in [lo, hi], keyed by global neuron id (independent of placement). */
        for (uint32_t i = 0; i < pop->size; i++) {
            uint32_t r[4], id = pop->first + i;
            sm_philox(d->seed, SM_STREAM_INIT, 0, id, 0, r);
            s->v[id] = pop->v_init_lo + (pop->v_init_hi - pop->v_init_lo) * sm_u01(r[0], r[1]);
        }
    }
    for (uint32_t c = 0; c < d->ncores; c++)
        s->cc[c].neuron_updates = 0;
    if ((rc = sm__out_open(s, eb)) != 0) {
        sm__free_state(s);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* ---- one timestep ---- */

/* update (with deliver fused in): each piece adds the inputs that arrived for this step, then steps its
 * neurons; spikes come out in global neuron order. */
static uint32_t sm__phase_update(sm_sim_t *s)
{
    const sm_deploy_t *d = s->d;
    size_t n = d->n, slot = (size_t)(s->step % s->R);
    float *in_e = s->acc + slot * n, *in_i = s->acc + ((size_t)s->R + slot) * n;
    uint32_t ns = 0;
    for (uint32_t q = 0; q < d->npieces; q++) {
        const sm_piece_t *pc = &d->pieces[q];
        uint32_t f = pc->first;
        if (d->net->pops[pc->pop].model == SM_MODEL_LIF)
            ns += sm_core_lif_step(&s->consts[pc->pop], pc->count, s->v + f, s->ge + f, s->gi + f, s->ref + f,
                                   in_e + f, in_i + f, f, s->spk + ns);
        else
            ns += sm_core_poisson_step(s->p_spike[pc->pop], d->seed, pc->count, f, s->step, s->spk + ns);
    }
    return ns;
}

/* route: every spike becomes a packet of its piece's key; the cores on its multicast tree apply the
 * synapses of its row into their delay buffers. Traffic counters are folded lazily (sm__fold). */
static void sm__phase_route(sm_sim_t *s, uint32_t ns)
{
    const sm_deploy_t *d = s->d;
    size_t n = d->n, off[128];
    for (uint32_t k = 0; k < 128; k++) {
        uint32_t inh = k >> 6, delay = (k & 63u) + 1u;
        off[k] = ((size_t)inh * s->R + (size_t)((s->step + delay) % s->R)) * n;
    }
    float *acc = s->acc;
    uint64_t ops = 0;
    for (uint32_t k = 0; k < ns; k++) {
        uint32_t id = s->spk[k];
        s->piece_pending[d->piece_of[id]]++;
        s->neuron_pending[id]++;
        const sm_syn_t *sy = d->syn + d->row[id], *end = d->syn + d->row[id + 1];
        ops += (uint64_t)(end - sy);
        for (; sy < end; sy++)
            acc[off[sy->tgt >> SM_SYN_POST_BITS] + SM_SYN_POST(sy->tgt)] += sy->w;
    }
    s->stats.synaptic_ops += ops;
}

uint32_t sm_sim_step(sm_sim_t *s)
{
    uint32_t ns = sm__phase_update(s);
    sm__phase_route(s, ns);
    s->nspk = ns;
    s->stats.spikes += ns;
    if (s->spikes_f)
        sm__out_spikes(s, s->step, s->spk, ns);
    s->step++;
    s->stats.steps = s->step;
    return ns;
}

/* ---- counters ---- */

void sm__fold(sm_sim_t *s)
{
    const sm_deploy_t *d = s->d;
    for (uint32_t q = 0; q < d->npieces; q++) {
        uint64_t c = s->piece_pending[q];
        if (c == 0)
            continue;
        const sm_piece_t *pc = &d->pieces[q];
        s->pop_spikes[pc->pop] += c;
        s->cc[pc->core].spikes_sent += c;
        if (pc->ndest > 0) {
            s->stats.packets += c;
            s->stats.hops += c * pc->hops;
            s->stats.deliveries += c * pc->ndest;
            sm_mesh_route((sm_mesh_t *)&d->mesh, d->cores[pc->core].tile, pc->key, c, NULL, NULL, NULL, NULL);
        }
        s->piece_pending[q] = 0;
    }
    for (uint32_t i = 0; i < d->n; i++) {
        uint64_t c = s->neuron_pending[i];
        if (c == 0)
            continue;
        for (uint64_t k = d->row[i]; k < d->row[i + 1]; k++)
            s->cc[d->pieces[d->piece_of[SM_SYN_POST(d->syn[k].tgt)]].core].synaptic_ops += c;
        s->neuron_pending[i] = 0;
    }
    uint64_t nu = 0;
    for (uint32_t c = 0; c < d->ncores; c++) {
        s->cc[c].neuron_updates = (uint64_t)d->cores[c].count * s->step;
        s->cc[c].packets_in = d->mesh.core_packets[c];
        nu += s->cc[c].neuron_updates;
    }
    s->stats.neuron_updates = nu;
}

const sm_stats_t *sm_sim_stats(sm_sim_t *s)
{
    sm__fold(s);
    return &s->stats;
}

const sm_core_counters_t *sm_sim_core_counters(sm_sim_t *s)
{
    sm__fold(s);
    return s->cc;
}

const uint64_t *sm_sim_pop_spikes(const sm_sim_t *s) { return s->pop_spikes; }
const uint32_t *sm_sim_last_spikes(const sm_sim_t *s, uint32_t *n)
{
    *n = s->nspk;
    return s->spk;
}
const double *sm_sim_v(const sm_sim_t *s) { return s->v; }
const double *sm_sim_ge(const sm_sim_t *s) { return s->ge; }
const double *sm_sim_gi(const sm_sim_t *s) { return s->gi; }
uint64_t sm_sim_now(const sm_sim_t *s) { return s->step; }

/* ---- the loop ---- */

#define SM__BATCH_NS 10000000u /* run steps for up to 10 ms per loop iteration when not paced */
#define SM__TICK_MS 1u         /* real-time pacing granularity */

static void sm__close_all(sm_sim_t *s);

static void sm__progress_draw(sm_sim_t *s, int final)
{
    if (!s->show_progress)
        return;
    double frac = s->nsteps ? (double)s->step / (double)s->nsteps : 1.0;
    int width = 30, fill = (int)(frac * width);
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    double el = (double)(uv_hrtime() - s->t0_ns) * 1e-9;
    fprintf(stderr, "\r[%s] %3d%%  step %llu/%llu  %.1f s ", bar, (int)(frac * 100.0), (unsigned long long)s->step,
            (unsigned long long)s->nsteps, el);
    if (final)
        fprintf(stderr, "\r%*s\r", width + 60, "");
    fflush(stderr);
}

static void sm__on_progress(uv_timer_t *t)
{
    sm__progress_draw(t->data, 0);
}

static void sm__finish(sm_sim_t *s)
{
    if (s->finished)
        return;
    s->finished = 1;
    s->stats.loop_seconds = (double)(uv_hrtime() - s->t0_ns) * 1e-9;
    sm__progress_draw(s, 1);
    sm__close_all(s);
}

static void sm__on_idle(uv_idle_t *h)
{
    sm_sim_t *s = h->data;
    uint64_t t0 = uv_hrtime();
    while (s->step < s->nsteps && !s->stop) {
        sm_sim_step(s);
        if (uv_hrtime() - t0 > SM__BATCH_NS)
            break;
    }
    if (s->step >= s->nsteps || s->stop)
        sm__finish(s);
}

static void sm__on_pace(uv_timer_t *h)
{
    sm_sim_t *s = h->data;
    double dt_ns = s->net->dt * 1e6;
    uint64_t now = uv_hrtime();
    uint64_t due = (uint64_t)((double)(now - s->t0_ns) / dt_ns) + 1;
    if (due > s->nsteps)
        due = s->nsteps;
    while (s->step < due && !s->stop) {
        sm_sim_step(s);
        /* A step overran when it completed more than one pacing tick after its deadline. */
        double deadline = (double)s->step * dt_ns + SM__TICK_MS * 1e6;
        if ((double)(uv_hrtime() - s->t0_ns) > deadline)
            s->stats.overruns++;
    }
    if (s->step >= s->nsteps || s->stop)
        sm__finish(s);
}

static void sm__on_signal(uv_signal_t *h, int signum)
{
    sm_sim_t *s = h->data;
    s->stop = 1;
    s->stats.interrupted = 1;
    s->stats.signal = signum;
}

static void sm__on_closed(uv_handle_t *h)
{
    (void)h;
}

static void sm__close_all(sm_sim_t *s)
{
    uv_handle_t *hs[] = {(uv_handle_t *)&s->idle, (uv_handle_t *)&s->pace, (uv_handle_t *)&s->progress,
                         (uv_handle_t *)&s->sigint, (uv_handle_t *)&s->sigterm};
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
        if (hs[i]->data && !uv_is_closing(hs[i]))
            uv_close(hs[i], sm__on_closed);
}

int sm_sim_run(sm_sim_t *s, sm_errbuf_t *eb)
{
    int rc;
    if ((rc = uv_loop_init(&s->loop)) != 0)
        return sm_errorf(eb, SM_EIO, "cannot start the event loop: %s", uv_strerror(rc));
    s->show_progress = s->opts.progress > 0 || (s->opts.progress < 0 && isatty(STDERR_FILENO));
    s->t0_ns = uv_hrtime();
    if (s->opts.handle_signals) {
        uv_signal_init(&s->loop, &s->sigint);
        uv_signal_init(&s->loop, &s->sigterm);
        s->sigint.data = s->sigterm.data = s;
        uv_signal_start(&s->sigint, sm__on_signal, SIGINT);
        uv_signal_start(&s->sigterm, sm__on_signal, SIGTERM);
    }
    if (s->show_progress) {
        uv_timer_init(&s->loop, &s->progress);
        s->progress.data = s;
        uv_timer_start(&s->progress, sm__on_progress, 100, 100);
    }
    if (s->opts.realtime) {
        uv_timer_init(&s->loop, &s->pace);
        s->pace.data = s;
        uv_timer_start(&s->pace, sm__on_pace, 0, SM__TICK_MS);
    } else {
        uv_idle_init(&s->loop, &s->idle);
        s->idle.data = s;
        uv_idle_start(&s->idle, sm__on_idle);
    }
    uv_run(&s->loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&s->loop);
    if (rc != 0)
        return sm_errorf(eb, SM_EIO, "the event loop did not close cleanly: %s", uv_strerror(rc));
    sm__fold(s);
    return sm__out_finish(s, eb);
}

void sm_sim_destroy(sm_sim_t *s)
{
    if (!s)
        return;
    sm__out_abort(s);
    sm__free_state(s);
    free(s);
}
