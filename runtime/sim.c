/* runtime/sim.c: the simulation object: neuron state, delay buffers and counters over a deployment, the
 * timestep phases (deliver, update, route) and the libuv loop that schedules them. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <uv.h>

#include "runtime/sim_internal.h"

/* Zeroed memory for the large arrays that every step sweeps or reads at random (state, delay buffers,
 * delivery rows): from 1 MiB up, rounded up to whole 2 MiB pages, aligned to 2 MiB and marked for transparent
 * huge pages, so that random reads across them do not also miss the TLB; smaller ones aligned to a cache line.
 * Freed with free(). */
#define SM__HUGE (2u << 20)
static void *sm__big_calloc(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    size_t total = count * size, round = total ? total : 1;
    void *p = NULL;
    if (total < SM__HUGE / 2) { /* cache-line aligned: the vector loops then find v, ge and gi at the same offset */
        if (posix_memalign(&p, 64, round) != 0)
            return NULL;
        memset(p, 0, round);
        return p;
    }
    round = (total + SM__HUGE - 1) / SM__HUGE * SM__HUGE;
    if (round < total || posix_memalign(&p, SM__HUGE, round) != 0)
        return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, round, MADV_HUGEPAGE); /* advice only: without it the pages are small */
#endif
    memset(p, 0, total);
    return p;
}

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
    free(s->synin);
    free(s->raster_ev);
    free(s->raster_rows);
    free(s->probes);
    free(s->vcd_ev);
    free(s->trace.steps);
    free(s->trace.core_ns);
    free(s->trace.lat_hist);
    for (int k = 0; k < 2; k++) {
        free(s->step_active[k]);
        free(s->step_synops[k]);
    }
    sm__timing_destroy(s->tm);
    if (s->workers)
        for (uint32_t w = 0; w < s->nworkers; w++) {
            free(s->workers[w].spk[0]);
            free(s->workers[w].spk[1]);
            free(s->workers[w].runs);
            free(s->workers[w].prof_hist);
            free(s->workers[w].prof_slow_ns);
            free(s->workers[w].refq);
            free(s->workers[w].refq_mem);
            free(s->workers[w].dword);
            free(s->workers[w].srec[0]);
            free(s->workers[w].srec[1]);
        }
    free(s->workers);
    free(s->thread_prof);
    free(s->drow);
    free(s->core_q);
    free(s->thread_neurons);
}

static void sm__worker_main(void *arg);

/* Tells every started worker to leave and waits for it. */
static void sm__stop_workers(sm_sim_t *s)
{
    s->quit = 1;
    atomic_fetch_add_explicit(&s->batches, 1, memory_order_relaxed);
    for (uint32_t w = 1; w < s->nworkers; w++)
        if (s->workers[w].started)
            uv_sem_post(&s->workers[w].go);
    for (uint32_t w = 1; w < s->nworkers; w++)
        if (s->workers[w].started) {
            uv_thread_join(&s->workers[w].thread);
            uv_sem_destroy(&s->workers[w].go);
            s->workers[w].started = 0;
        }
}

/* Splits the pieces into contiguous ranges of about equal work (neurons plus incoming synapses). */
static void sm__assign_workers(sm_sim_t *s)
{
    const sm_deploy_t *d = s->d;
    double total = 0, acc = 0;
    for (uint32_t c = 0; c < d->ncores; c++)
        total += (double)d->cores[c].count + 0.05 * (double)d->cores[c].synapses;
    uint32_t q = 0;
    for (uint32_t w = 0; w < s->nworkers; w++) {
        sm__worker_t *wk = &s->workers[w];
        wk->piece_lo = q;
        double goal = total * (double)(w + 1) / (double)s->nworkers;
        while (q < d->npieces && (w + 1 == s->nworkers || acc < goal - 1e-9)) {
            uint32_t c = d->pieces[q].core;
            /* whole cores: take every piece of the core */
            while (q < d->npieces && d->pieces[q].core == c)
                q++;
            acc += (double)d->cores[c].count + 0.05 * (double)d->cores[c].synapses;
        }
        wk->piece_hi = q;
        wk->post_lo = wk->piece_lo < d->npieces ? d->pieces[wk->piece_lo].first : d->n;
        wk->post_hi = q < d->npieces ? d->pieces[q].first : d->n;
    }
}

/* The index in core_q of the first core boundary whose first neuron is at least x (ncore_q - 1 past them all). */
static uint32_t sm__cq_at(const sm_sim_t *s, double x)
{
    uint32_t lo = 0, hi = s->ncore_q - 1;
    while (lo < hi) {
        uint32_t m = lo + (hi - lo) / 2;
        if ((double)sm__q_first(s, s->core_q[m]) < x)
            lo = m + 1;
        else
            hi = m;
    }
    return lo;
}

/* How far worker v's neighbours may move into its range: the core boundary inside its pieces nearest to the
 * middle of its neurons. A worker with one core (no boundary inside) keeps it: side 0 (the bound for the left
 * neighbour's border) is then its first piece, side 1 (the right neighbour's) its end. */
static uint32_t sm__mid(const sm_sim_t *s, uint32_t v, int side)
{
    const sm__worker_t *wk = &s->workers[v];
    const double m = 0.5 * ((double)wk->post_lo + (double)wk->post_hi);
    uint32_t i = sm__cq_at(s, m), best = UINT32_MAX;
    for (uint32_t j = i > 0 ? i - 1 : i; j <= i && j < s->ncore_q; j++) {
        uint32_t q = s->core_q[j];
        if (q > wk->piece_lo && q < wk->piece_hi &&
            (best == UINT32_MAX || fabs((double)sm__q_first(s, q) - m) < fabs((double)sm__q_first(s, best) - m)))
            best = q;
    }
    return best != UINT32_MAX ? best : side == 0 ? wk->piece_lo : wk->piece_hi;
}

/* Where the borders may go: the pieces that start a core (a core's pieces are all updated by one worker, so
 * that each piece's spike counter has one writer), and for each worker the middle of its range, which bounds
 * how far its neighbours' borders move into it. At first each worker updates its own pieces. */
static int sm__init_borders(sm_sim_t *s)
{
    const sm_deploy_t *d = s->d;
    s->core_q = malloc(((size_t)d->npieces + 1) * sizeof *s->core_q);
    if (!s->core_q)
        return -1;
    s->ncore_q = 0;
    for (uint32_t q = 0; q < d->npieces; q++)
        if (q == 0 || d->pieces[q].core != d->pieces[q - 1].core)
            s->core_q[s->ncore_q++] = q;
    s->core_q[s->ncore_q++] = d->npieces;
    for (uint32_t w = 0; w < s->nworkers; w++) {
        sm__worker_t *wk = &s->workers[w];
        wk->qlo = wk->piece_lo;
        wk->qhi = wk->piece_hi;
    }
    for (uint32_t w = 0; w < s->nworkers; w++) {
        sm__worker_t *wk = &s->workers[w];
        wk->qmin = w == 0 ? wk->piece_lo : sm__mid(s, w - 1, 1);
        wk->qmax = w + 1 == s->nworkers ? wk->piece_hi : sm__mid(s, w + 1, 0);
    }
    return 0;
}

/* Room for the spikes of the most neurons worker w may update (its range moved as far as it can go), plus one. */
static size_t sm__worker_room(const sm_sim_t *s, const sm__worker_t *w)
{
    return (size_t)(sm__q_first(s, w->qmax) - sm__q_first(s, w->qmin)) + 1;
}

/* Lays out a worker's runs for its pieces [qlo, qhi): those it took from its left neighbour, its own, those from
 * its right neighbour, each part's neighbouring pieces of one population merged (one kernel call steps them all:
 * it has a fixed cost per call), and gives each run an empty refractory queue. */
static void sm__build_runs(sm_sim_t *s, sm__worker_t *wk)
{
    const sm_deploy_t *d = s->d;
    const uint32_t lo[3] = {wk->qlo, wk->qlo > wk->piece_lo ? wk->qlo : wk->piece_lo,
                            wk->qlo > wk->piece_hi ? wk->qlo : wk->piece_hi};
    const uint32_t hi[3] = {wk->qhi < wk->piece_lo ? wk->qhi : wk->piece_lo,
                            wk->qhi < wk->piece_hi ? wk->qhi : wk->piece_hi, wk->qhi};
    wk->nruns = 0;
    for (int k = 0; k < 3; k++) {
        uint32_t first_run = wk->nruns;
        for (uint32_t q = lo[k]; q < hi[k]; q++) {
            const sm_piece_t *pc = &d->pieces[q];
            uint32_t *last = wk->nruns > first_run ? wk->runs + 3 * (wk->nruns - 1) : NULL;
            if (last && last[0] == pc->pop && last[1] + last[2] == pc->first) {
                last[2] += pc->count;
            } else {
                wk->runs[3 * wk->nruns] = pc->pop;
                wk->runs[3 * wk->nruns + 1] = pc->first;
                wk->runs[3 * wk->nruns + 2] = pc->count;
                wk->nruns++;
            }
        }
        if (k == 0)
            wk->nruns_left = wk->nruns;
        else if (k == 1)
            wk->nruns_own = wk->nruns - wk->nruns_left;
    }
    for (uint32_t r = 0, at = 0; r < wk->nruns; r++) {
        uint32_t count = wk->runs[3 * r + 2];
        wk->refq[r] = (sm_refq_t){.idx = wk->refq_mem + at, .until = wk->refq_mem + at + count, .cap = count};
        at += 2 * count;
    }
}

static int sm__cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Moves the borders between the workers' ranges (between batches: no worker is running): border[u] becomes the
 * first piece worker u + 1 updates. The refractory queues follow their neurons, in the order they are released.
 * Returns 0, or -1 (out of memory: nothing moved). */
static int sm__set_borders(sm_sim_t *s, const uint32_t *border)
{
    const uint32_t W = s->nworkers, now = (uint32_t)s->step;
    size_t total = 0, k = 0;
    for (uint32_t u = 0; u < W; u++)
        for (uint32_t r = 0; r < s->workers[u].nruns; r++)
            total += s->workers[u].refq[r].len;
    uint64_t *ent = total ? malloc(total * sizeof *ent) : NULL;
    if (total && !ent)
        return -1;
    for (uint32_t u = 0; u < W; u++) { /* (steps until free, neuron): sorted, the order of release */
        const sm__worker_t *wk = &s->workers[u];
        for (uint32_t r = 0; r < wk->nruns; r++) {
            const sm_refq_t *q = &wk->refq[r];
            for (uint32_t j = 0, i = q->head; j < q->len; j++, i = i + 1 == q->cap ? 0 : i + 1) {
                int32_t left = (int32_t)(q->until[i] - now);
                ent[k++] = (uint64_t)(uint32_t)(left > 0 ? left : 0) << 32 | (wk->runs[3 * r + 1] + q->idx[i]);
            }
        }
    }
    if (total > 1)
        qsort(ent, total, sizeof *ent, sm__cmp_u64);
    for (uint32_t u = 0; u < W; u++) {
        sm__worker_t *wk = &s->workers[u];
        wk->qlo = u == 0 ? wk->qlo : border[u - 1];
        wk->qhi = u + 1 == W ? wk->qhi : border[u];
        sm__build_runs(s, wk);
    }
    for (k = 0; k < total; k++) {
        uint32_t id = (uint32_t)ent[k], lo = 0, hi = W - 1;
        while (lo < hi) { /* the worker that updates neuron id */
            uint32_t m = lo + (hi - lo) / 2;
            if (id >= sm__q_first(s, s->workers[m].qhi))
                lo = m + 1;
            else
                hi = m;
        }
        sm__worker_t *wk = &s->workers[lo];
        uint32_t a = 0, b = wk->nruns - 1;
        while (a < b) { /* its run */
            uint32_t m = a + (b - a + 1) / 2;
            if (wk->runs[3 * m + 1] <= id)
                a = m;
            else
                b = m - 1;
        }
        sm_refq_t *q = &wk->refq[a];
        uint32_t j = q->head + q->len;
        q->idx[j >= q->cap ? j - q->cap : j] = id - wk->runs[3 * a + 1];
        q->until[j >= q->cap ? j - q->cap : j] = now + (uint32_t)(ent[k] >> 32);
        q->len++;
    }
    free(ent);
    return 0;
}

/* The balancer, between batches. SM__SPLIT_ADAPT, about every SM__BAL_WINDOW_NS: from what each worker measured
 * since it last looked (ns per neuron update; ns of its route and record, which stay where they are), the split
 * of the neurons at which every worker would finish its step at the same time; each border moves part of the
 * way there (at most half), by whole cores, and only when that crosses most of a core; away from its first
 * place only for an imbalance of SM__BAL_DEADBAND seen twice in a row, back toward it on any imbalance that way
 * (see below and docs/runtime.md). SM__SPLIT_SHUFFLE: each border moves to a random core boundary. */
#define SM__BAL_DEADBAND 0.15
#define SM__BAL_WINDOW_NS 10000000u /* what the balancer looks at: about 10 ms of steps (and 32 at least) */
#define SM__BAL_CLIP 1.3 /* a step slower than 1.3x the estimate counts as 1.3x */
static void sm__rebalance(sm_sim_t *s)
{
    const uint32_t W = s->nworkers;
    uint32_t border[1024];
    int moved = 0;
    if (s->split == SM__SPLIT_SHUFFLE) {
        for (uint32_t u = 0; u + 1 < W; u++) {
            uint32_t i0 = sm__cq_at(s, sm__q_first(s, s->workers[u + 1].qmin));
            uint32_t i1 = sm__cq_at(s, sm__q_first(s, s->workers[u].qmax));
            s->shuffle = s->shuffle * 6364136223846793005ull + 1442695040888963407ull;
            border[u] = i1 > i0 ? s->core_q[i0 + (uint32_t)((s->shuffle >> 33) % (i1 - i0 + 1))] : s->core_q[i0];
            if (border[u] > s->workers[u].qmax || border[u] < s->workers[u + 1].qmin)
                border[u] = s->workers[u].qhi;
            moved |= border[u] != s->workers[u].qhi;
        }
    } else {
        uint64_t now = uv_hrtime();
        if (s->bal_t0 == 0)
            s->bal_t0 = now;
        if (s->workers[0].bal_steps < 32 || now - s->bal_t0 < SM__BAL_WINDOW_NS)
            return;
        s->bal_t0 = now;
        double known = 0, nknown = 0, sum_inv = 0, sum_r = 0, want = sm__q_first(s, 0);
        for (uint32_t u = 0; u < W; u++) {
            sm__worker_t *wk = &s->workers[u];
            if (wk->bal_neurons >= 1024)
                wk->bal_per_neuron = (double)wk->bal_ns[0] / (double)wk->bal_neurons;
            wk->bal_route = (double)wk->bal_ns[1] / (double)wk->bal_steps;
            if (wk->bal_per_neuron > 0)
                known += wk->bal_per_neuron, nknown++;
        }
        if (nknown == 0)
            goto reset;
        for (uint32_t u = 0; u < W; u++) {
            double a = s->workers[u].bal_per_neuron > 0 ? s->workers[u].bal_per_neuron : known / nknown;
            sum_inv += 1.0 / a;
            sum_r += s->workers[u].bal_route / a;
        }
        /* every worker finishing at T: sum over u of (T - r_u) / a_u = the neurons */
        double T = ((double)sm__q_first(s, s->d->npieces) - want + sum_r) / sum_inv;
        for (uint32_t u = 0; u + 1 < W; u++) {
            sm__worker_t *wk = &s->workers[u];
            double a = wk->bal_per_neuron > 0 ? wk->bal_per_neuron : known / nknown;
            double share = (T - wk->bal_route) / a;
            want += share > 0 ? share : 0;
            /* A moved core's ge and gi are written by its owner's route and by its new updater, on two CPUs, so
             * their cache lines cross between them every step: a border leaves its first place only for an
             * imbalance (the two neighbours' step times differ by SM__BAL_DEADBAND) seen twice in a row the same
             * way, not for one moment of other work; it moves back toward its first place on any imbalance that
             * way, and no further. A move against the previous one halves this border's gain (the cost of the
             * neurons at the border may differ from the averages: Poisson sources cost more than LIF neurons),
             * one the same way grows it back, up to half way. */
            const sm__worker_t *nx = &s->workers[u + 1];
            double f0 = (double)wk->bal_ns[0] / (double)wk->bal_steps + wk->bal_route;
            double f1 = (double)nx->bal_ns[0] / (double)nx->bal_steps + nx->bal_route;
            double cur = sm__q_first(s, wk->qhi), home = sm__q_first(s, wk->piece_hi);
            double g = wk->bal_gain > 0 ? wk->bal_gain : 0.5;
            int dir = want > cur ? 1 : -1, seen = wk->bal_seen;
            int big = fabs(f0 - f1) >= SM__BAL_DEADBAND * (f0 > f1 ? f0 : f1) && (f0 > f1) == (dir < 0);
            wk->bal_seen = big ? dir : 0;
            int back = (dir > 0 && cur < home) || (dir < 0 && cur > home);
            if (!back && !(big && seen == dir)) {
                border[u] = wk->qhi;
                continue;
            }
            double target = back && (dir > 0 ? want > home : want < home) ? home : want;
            if (!back && wk->bal_dir != 0 && dir != wk->bal_dir)
                g = g * 0.5 > 1.0 / 64 ? g * 0.5 : 1.0 / 64;
            double to = cur + g * (target - cur);
            double lo = sm__q_first(s, s->workers[u + 1].qmin), hi = sm__q_first(s, wk->qmax);
            to = to < lo ? lo : to > hi ? hi : to;
            uint32_t i = sm__cq_at(s, to); /* the nearer of the boundaries around `to` */
            if (i > 0 && to - sm__q_first(s, s->core_q[i - 1]) < sm__q_first(s, s->core_q[i]) - to)
                i--;
            uint32_t b = s->core_q[i];
            if (b > wk->qmax || b < s->workers[u + 1].qmin)
                b = wk->qhi;
            double step_ = fabs((double)sm__q_first(s, b) - cur);
            border[u] = step_ > 0 && fabs(to - cur) >= 0.75 * step_ ? b : wk->qhi;
            if (back && border[u] == wk->qhi) { /* back toward home: at least one core, never past it */
                uint32_t k = sm__cq_at(s, cur);
                uint32_t nb = dir > 0 ? s->core_q[k + 1 < s->ncore_q ? k + 1 : k] : s->core_q[k > 0 ? k - 1 : 0];
                if (dir > 0 ? nb <= wk->piece_hi : nb >= wk->piece_hi)
                    border[u] = nb;
            }
            if (border[u] != wk->qhi) {
                if (!back) { /* moves back home leave the gain as it is */
                    wk->bal_gain = wk->bal_dir == dir ? (g * 1.5 < 0.5 ? g * 1.5 : 0.5) : g;
                    wk->bal_dir = dir;
                }
                moved = 1;
            }
        }
    reset:
        for (uint32_t u = 0; u < W; u++) {
            sm__worker_t *wk = &s->workers[u];
            wk->bal_ns[0] = wk->bal_ns[1] = wk->bal_neurons = wk->bal_steps = 0;
        }
    }
    if (moved)
        (void)sm__set_borders(s, border); /* out of memory: the borders stay */
}

void sm__balance_window(sm_sim_t *s, const double *per_neuron, const double *route, uint64_t steps)
{
    if (s->nworkers < 2 || steps == 0)
        return;
    s->split = SM__SPLIT_ADAPT;
    for (uint32_t u = 0; u < s->nworkers; u++) {
        sm__worker_t *wk = &s->workers[u];
        uint64_t neurons = sm__worker_neurons(s, u);
        wk->bal_steps = steps;
        wk->bal_neurons = neurons * steps;
        wk->bal_ns[0] = (uint64_t)(per_neuron[u] * (double)(neurons * steps));
        wk->bal_ns[1] = (uint64_t)(route[u] * (double)steps);
    }
    s->bal_t0 = 1; /* the window is over */
    sm__rebalance(s);
}

/* First synapse of a row (sorted by postsynaptic neuron) whose target is at least post. */
static const sm_syn_t *sm__row_lower(const sm_syn_t *a, const sm_syn_t *b, uint32_t post)
{
    while (a < b) {
        const sm_syn_t *m = a + (b - a) / 2;
        if (SM_SYN_POST(m->tgt) < post)
            a = m + 1;
        else
            b = m;
    }
    return a;
}

/* Builds a worker's delivery rows: for every source neuron, the part of its row (sorted by target) that falls
 * on the worker's neurons, with the weight kept once when the part has a single weight. The route then reads
 * the worker's own words per spike, half the bytes of the synapses for one-weight rows. */
static int sm__build_drows(sm_sim_t *s, sm__worker_t *wk)
{
    const sm_deploy_t *d = s->d;
    const size_t W = s->nworkers;
    uint64_t words = 0;
    for (uint32_t id = 0; id < d->n; id++) {
        const sm_syn_t *a = d->syn + d->row[id], *b = d->syn + d->row[id + 1];
        a = sm__row_lower(a, b, wk->post_lo);
        b = sm__row_lower(a, b, wk->post_hi);
        if (b - a > (ptrdiff_t)(SM__DROW_PAIRS - 1))
            return -2; /* more synapses from one neuron onto one thread's neurons than a count holds */
        uint32_t one = 1, count = (uint32_t)(b - a);
        for (const sm_syn_t *c = a + 1; c < b && one; c++)
            one = memcmp(&c->w, &a->w, sizeof a->w) == 0;
        sm__drow_t *e = &s->drow[id * W + wk->id];
        e->off = words;
        e->count = count | (one ? 0u : SM__DROW_PAIRS);
        e->w = count ? a->w : 0.0f;
        words += one ? count : 2u * (uint64_t)count;
    }
    if (words > SIZE_MAX / sizeof *wk->dword)
        return -1;
    wk->dword = sm__big_calloc((size_t)(words ? words : 1), sizeof *wk->dword);
    if (!wk->dword)
        return -1;
    for (uint32_t id = 0; id < d->n; id++) {
        const sm__drow_t *e = &s->drow[id * W + wk->id];
        uint32_t count = e->count & ~SM__DROW_PAIRS, *o = wk->dword + e->off;
        if (count == 0)
            continue;
        const sm_syn_t *a = sm__row_lower(d->syn + d->row[id], d->syn + d->row[id + 1], wk->post_lo);
        for (uint32_t k = 0; k < count; k++) {
            if (e->count & SM__DROW_PAIRS) {
                o[2 * k] = a[k].tgt;
                memcpy(&o[2 * k + 1], &a[k].w, sizeof a[k].w);
            } else {
                o[k] = a[k].tgt;
            }
        }
    }
    return 0;
}

/* Whether the update kernels prefetch the state ahead (sm_lif_consts_t.prefetch): when a worker's share of v, ge
 * and gi is larger than the core's L2 and the whole state lies well within the L3, and there are no delay
 * buffers. Measured on cuba:N (one AVX-512 core's sweep): a share of 2-8 MB from the L3 goes about 12% faster
 * with it, a whole state of 14-29 MB 25-80% slower, and with delay buffers the update 1.6-1.8x slower. */
#define SM__PREFETCH_MAX_STATE ((size_t)10 << 20)
static int sm__want_prefetch(const sm_sim_t *s)
{
    static long l2 = -1; /* relaxed atomics: every caller stores the same value */
    long have = __atomic_load_n(&l2, __ATOMIC_RELAXED);
    if (have < 0) {
#ifdef _SC_LEVEL2_CACHE_SIZE
        have = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
        if (have <= 0)
            have = 1L << 20; /* unknown: 1 MiB */
        __atomic_store_n(&l2, have, __ATOMIC_RELAXED);
    }
    size_t state = (size_t)s->d->n * 3 * (s->opts.single ? sizeof(float) : sizeof(double)); /* v, ge, gi */
    return !s->acc && state / s->nworkers > (size_t)have && state <= SM__PREFETCH_MAX_STATE;
}

/* --precision single holds v in a float: a potential beyond it, or two that far apart, makes v inf and then NaN
 * (v_inf + (v - v_inf) pm), a neuron that silently never spikes again. The potentials a population's update
 * starts from or relaxes to must lie within SM__SINGLE_MV of 0 and of each other, a quarter of the largest
 * float, which leaves room for the update's sums. */
#define SM__SINGLE_MV (FLT_MAX / 4.0)
typedef struct {
    const char *what;
    double mv;
} sm__mv_t;

static int sm__single_fits(const sm_pop_t *pop, const sm_lif_consts_t *c, sm_errbuf_t *eb)
{
    /* 4, then 1 without a leak, then 3 with a graph's input */
    sm__mv_t at[8] = {{"v_rest_mV + i_bias_mV", c->v_inf},
                      {"v_reset_mV", c->v_reset},
                      {"v_init_mV", pop->v_init_lo},
                      {"v_init_mV", pop->v_init_hi}};
    int n = 4;
    if (c->general && c->v_base != c->v_inf)
        at[n++] = (sm__mv_t){"i_bias_mV", c->v_base};
    if (pop->drive) { /* a graph's per-neuron constant input: alone, and added to the steady drive */
        double lo = pop->drive[0], hi = pop->drive[0];
        for (uint32_t j = 1; j < pop->size; j++)
            lo = fmin(lo, pop->drive[j]), hi = fmax(hi, pop->drive[j]);
        at[n++] = (sm__mv_t){"a neuron's constant input from the graph", fabs(lo) > fabs(hi) ? lo : hi};
        at[n++] = (sm__mv_t){"the steady drive with a neuron's constant input", c->v_base + lo};
        at[n++] = (sm__mv_t){"the steady drive with a neuron's constant input", c->v_base + hi};
    }
    int lo = 0, hi = 0;
    for (int k = 0; k < n; k++) {
        if (!(fabs(at[k].mv) <= SM__SINGLE_MV))
            return sm_errorf(eb, SM_ERANGE, "%s is %g mV, beyond the +-%.2g mV that --precision single (32-bit "
                             "floats) computes with; use --precision double", at[k].what, at[k].mv, SM__SINGLE_MV);
        lo = at[k].mv < at[lo].mv ? k : lo;
        hi = at[k].mv > at[hi].mv ? k : hi;
    }
    if (at[hi].mv - at[lo].mv > SM__SINGLE_MV)
        return sm_errorf(eb, SM_ERANGE, "%s (%g mV) and %s (%g mV) are %g mV apart, beyond the %.2g mV that "
                         "--precision single (32-bit floats) computes with; use --precision double", at[lo].what,
                         at[lo].mv, at[hi].what, at[hi].mv, at[hi].mv - at[lo].mv, SM__SINGLE_MV);
    return 0;
}

int sm_sim_create(sm_sim_t **out, const sm_deploy_t *d, const sm_run_opts_t *opts, sm_errbuf_t *eb)
{
    const sm_net_t *net = d->net;
    size_t n = d->n ? d->n : 1, es = opts->single ? sizeof(float) : sizeof(double);
    int rc;
    *out = NULL;
    if (!d->row || (d->nsyn > 0 && !d->syn))
        return sm_errorf(eb, SM_EINVAL, "the deployment's synapses were dropped (sm_deploy_drop_synapses): "
                                        "create every simulation before dropping them");
    if (!(opts->duration >= 0.0) || !isfinite(opts->duration))
        return sm_errorf(eb, SM_EINVAL, "--duration must be zero or a positive number of ms");
    double steps = floor(opts->duration / net->dt + 1e-9);
    if (opts->duration > 0 && steps < 1)
        return sm_errorf(eb, SM_EINVAL, "--duration %g ms is shorter than one step of %g ms (0 runs no step)",
                         opts->duration, net->dt);
    if (steps > 1e12)
        return sm_errorf(eb, SM_ERANGE, "--duration %g ms is %.3g steps of %g ms; at most 1e12 are supported",
                         opts->duration, steps, net->dt);
    if (opts->threads > 1024)
        return sm_errorf(eb, SM_ERANGE, "--threads %u: at most 1024 threads are supported", opts->threads);
    if (opts->split != SM_SPLIT_ADAPT && opts->split != SM_SPLIT_FIXED && opts->split != SM_SPLIT_SHUFFLE)
        return sm_errorf(eb, SM_EINVAL, "split %d: must be SM_SPLIT_ADAPT, SM_SPLIT_FIXED or SM_SPLIT_SHUFFLE",
                         opts->split);
    sm_sim_t *s = calloc(1, sizeof *s);
    if (!s)
        return sm_errorf(eb, SM_ENOMEM, "out of memory");
    s->d = d;
    s->net = net;
    s->opts = *opts;
    s->nsteps = (uint64_t)steps;
    s->R = d->max_delay;
    s->nworkers = opts->threads ? opts->threads : (uint32_t)uv_available_parallelism();
    if (!opts->threads && s->nworkers > d->n / SM_NEURONS_PER_THREAD)
        s->nworkers = d->n / SM_NEURONS_PER_THREAD; /* the default: a smaller share would not pay for the step's
                                                     * synchronisation */
    if (s->nworkers < 1)
        s->nworkers = 1;
    if (s->nworkers > d->ncores)
        s->nworkers = d->ncores ? d->ncores : 1;
    s->stats.threads = s->nworkers;
    /* with more threads than CPUs, threads take turns on a CPU: their speeds say nothing of their shares, and
     * a thread spinning between batches takes the CPU of one that has work */
    const int own_cpus = s->nworkers > 1 && s->nworkers <= uv_available_parallelism();
    s->split = s->nworkers < 2 || opts->split == SM_SPLIT_FIXED ? SM__SPLIT_OFF
               : opts->split == SM_SPLIT_SHUFFLE                ? SM__SPLIT_SHUFFLE
               : own_cpus                                       ? SM__SPLIT_ADAPT
                                                                : SM__SPLIT_OFF;
    s->shuffle = d->seed;
    s->spin_between = own_cpus;
    s->thread_neurons = calloc(s->nworkers, sizeof *s->thread_neurons);
    s->v = sm__big_calloc(n, es);
    s->ge = sm__big_calloc(n, es);
    s->gi = sm__big_calloc(n, es);
    s->ref = calloc(n, sizeof *s->ref);
    s->acc = s->R > 1 ? sm__big_calloc(2 * (size_t)s->R * n, es) : NULL;
    s->consts = calloc(net->npops, sizeof *s->consts);
    s->p_spike = calloc(net->npops, sizeof *s->p_spike);
    s->spk = malloc((n + 1) * sizeof *s->spk);
    s->piece_pending = calloc(d->npieces ? d->npieces : 1, sizeof *s->piece_pending);
    s->neuron_pending = sm__big_calloc(n, sizeof *s->neuron_pending);
    s->pop_spikes = calloc(net->npops, sizeof *s->pop_spikes);
    s->cc = calloc(d->ncores ? d->ncores : 1, sizeof *s->cc);
    s->workers = aligned_alloc(64, s->nworkers * sizeof *s->workers);
    if (s->workers)
        memset(s->workers, 0, s->nworkers * sizeof *s->workers);
    s->thread_prof = opts->profile ? calloc((size_t)s->nworkers * 9, sizeof *s->thread_prof) : NULL;
    int bad = !s->v || !s->ge || !s->gi || !s->ref || (s->R > 1 && !s->acc) || !s->consts || !s->p_spike ||
              !s->spk || !s->piece_pending || !s->neuron_pending || !s->pop_spikes || !s->cc || !s->workers ||
              !s->thread_neurons ||
              (opts->profile && !s->thread_prof);
    if (!bad) {
        sm__assign_workers(s);
        bad = sm__init_borders(s) != 0;
        for (uint32_t w = 0; w < s->nworkers && !bad; w++) {
            sm__worker_t *wk = &s->workers[w];
            size_t room = sm__worker_room(s, wk);
            wk->s = s;
            wk->id = w;
            wk->spk[0] = malloc(room * sizeof *wk->spk[0]);
            wk->spk[1] = malloc(room * sizeof *wk->spk[1]);
            wk->runs = malloc(3 * ((size_t)(wk->qmax - wk->qmin) + 3) * sizeof *wk->runs);
            wk->refq = calloc((size_t)(wk->qmax - wk->qmin) + 3, sizeof *wk->refq);
            wk->refq_mem = malloc(2 * room * sizeof *wk->refq_mem);
            wk->prof_hist = opts->profile ? calloc(4 * SM__PROF_BINS, sizeof *wk->prof_hist) : NULL;
            wk->prof_slow_ns = opts->profile ? calloc(SM__PROF_BINS, sizeof *wk->prof_slow_ns) : NULL;
            bad = !wk->spk[0] || !wk->spk[1] || !wk->runs || !wk->refq || !wk->refq_mem ||
                  (opts->profile && (!wk->prof_hist || !wk->prof_slow_ns));
            if (!bad)
                sm__build_runs(s, wk);
        }
    }
    if (!bad) {
        s->drow = (uint64_t)d->n * s->nworkers > SIZE_MAX / sizeof *s->drow
                      ? NULL
                      : sm__big_calloc((size_t)d->n * s->nworkers, sizeof *s->drow);
        bad = !s->drow;
    }
    int long_row = 0;
    for (uint32_t w = 0; w < s->nworkers && !bad; w++) {
        sm__worker_t *wk = &s->workers[w];
        size_t room = sm__worker_room(s, wk) * s->nworkers;
        wk->srec[0] = malloc(room * sizeof *wk->srec[0]);
        wk->srec[1] = malloc(room * sizeof *wk->srec[1]);
        int r = !wk->srec[0] || !wk->srec[1] ? -1 : sm__build_drows(s, wk);
        long_row = r == -2;
        bad = r != 0;
    }
    if (bad) {
        sm__free_state(s);
        free(s);
        if (long_row)
            return sm_errorf(eb, SM_ERANGE, "a neuron has more than %u synapses onto the neurons of one worker "
                                            "thread, the most supported; run with more --threads", SM__DROW_PAIRS - 1);
        return sm_errorf(eb, SM_ENOMEM, "out of memory for the state of %u neurons", d->n);
    }
    const int prefetch = sm__want_prefetch(s);
    for (uint32_t p = 0; p < net->npops; p++) {
        const sm_pop_t *pop = &net->pops[p];
        /* Only lif populations have a membrane: sources (poisson, spike_source) keep zero constants, and their
         * placeholder parameters cannot refuse a run (a small dt against a refractory period they do not have). */
        if (pop->model == SM_MODEL_LIF && ((rc = sm_lif_consts(&pop->lif, net->dt, &s->consts[p], eb)) != 0 ||
                                           (opts->single && (rc = sm__single_fits(pop, &s->consts[p], eb)) != 0))) {
            char msg[SM_ERRBUF_SIZE];
            snprintf(msg, sizeof msg, "%s", eb ? eb->msg : "");
            sm__free_state(s);
            free(s);
            return sm_errorf(eb, rc, "network '%s': population '%s': %s", net->name, pop->name, msg);
        }
        s->consts[p].prefetch = prefetch;
        s->p_spike[p] = pop->model == SM_MODEL_POISSON ? pop->rate_hz * net->dt * 1e-3 : 0.0;
        /* Initial v: uniform in [lo, hi], keyed by global neuron id (independent of placement). */
        for (uint32_t i = 0; i < pop->size; i++) {
            uint32_t r[4], id = pop->first + i;
            sm_philox(d->seed, SM_STREAM_INIT, 0, id, 0, r);
            double v0 = pop->v_init_lo + (pop->v_init_hi - pop->v_init_lo) * sm_u01(r[0], r[1]);
            if (opts->single)
                ((float *)s->v)[id] = (float)v0;
            else
                ((double *)s->v)[id] = v0;
        }
    }
    if ((rc = sm__out_open(s, eb)) != 0) {
        sm__free_state(s);
        free(s);
        return rc;
    }
    if (opts->out_dir) {
        /* raster.svg draws the first neurons of each population; spikes.vcd probes the first four of each */
        s->raster_rows = calloc(net->npops, sizeof *s->raster_rows);
        s->probes = calloc((size_t)net->npops * 4 + 1, sizeof *s->probes);
        if (!s->raster_rows || !s->probes) {
            sm__out_abort(s);
            sm__free_state(s);
            free(s);
            return sm_errorf(eb, SM_ENOMEM, "out of memory");
        }
        uint32_t per = 600 / net->npops < 20 ? 20 : 600 / net->npops;
        for (uint32_t p = 0; p < net->npops; p++) {
            s->raster_rows[p] = net->pops[p].size < per ? net->pops[p].size : per;
            for (uint32_t i = 0; i < 4 && i < net->pops[p].size && s->nprobes < 64; i++)
                s->probes[s->nprobes++] = net->pops[p].first + i;
        }
    }
    if (opts->timing || opts->mesh_cycle) {
        s->opts.timing = 1;
        s->synin = calloc(n, sizeof *s->synin);
        for (int k = 0; k < 2; k++) {
            s->step_active[k] = calloc(d->ncores + 1, sizeof *s->step_active[k]);
            s->step_synops[k] = calloc(d->ncores + 1, sizeof *s->step_synops[k]);
        }
        rc = !s->synin || !s->step_active[0] || !s->step_active[1] || !s->step_synops[0] || !s->step_synops[1]
                 ? sm_errorf(eb, SM_ENOMEM, "out of memory for the timing model")
                 : sm__timing_create(s, eb);
        if (rc) {
            sm__out_abort(s);
            sm__free_state(s);
            free(s);
            return rc;
        }
    }
    s->step_barrier.n = s->nworkers;
    if (s->nworkers > 1) {
        if (uv_mutex_init(&s->step_barrier.mu) != 0 || uv_cond_init(&s->step_barrier.cv) != 0) {
            sm__out_abort(s);
            sm__free_state(s);
            free(s);
            return sm_errorf(eb, SM_ENOMEM, "cannot create the step barrier");
        }
        s->step_barrier.ready = 1;
    }
    for (uint32_t w = 1; w < s->nworkers && !bad; w++) {
        sm__worker_t *wk = &s->workers[w];
        bad = uv_sem_init(&wk->go, 0) != 0;
        if (!bad)
            bad = uv_thread_create(&wk->thread, sm__worker_main, wk) != 0;
        if (bad)
            uv_sem_destroy(&wk->go);
        else
            wk->started = 1;
    }
    if (bad) {
        sm__stop_workers(s);
        if (s->step_barrier.ready) {
            uv_mutex_destroy(&s->step_barrier.mu);
            uv_cond_destroy(&s->step_barrier.cv);
        }
        sm__out_abort(s);
        sm__free_state(s);
        free(s);
        return sm_errorf(eb, SM_ENOMEM, "cannot start %u worker threads", opts->threads);
    }
    *out = s;
    return 0;
}

/* ---- one timestep ---- */

/* One turn of a spin-wait loop: tells the CPU (and a hypervisor) that this thread is waiting. */
static inline void sm__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void sm__spin_wait(sm__spin_barrier_t *b, uint32_t *sense)
{
    uint32_t my = *sense ^ 1u;
    *sense = my;
    if (atomic_fetch_add(&b->count, 1) + 1 == b->n) {
        atomic_store(&b->count, 0);
        atomic_store(&b->sense, my);
        if (atomic_load(&b->sleepers) > 0) { /* wake those who stopped spinning */
            uv_mutex_lock(&b->mu);
            uv_cond_broadcast(&b->cv);
            uv_mutex_unlock(&b->mu);
        }
        return;
    }
    for (uint32_t spins = 0; spins < 800; spins++) { /* about 20 microseconds */
        if (atomic_load_explicit(&b->sense, memory_order_acquire) == my)
            return;
        sm__cpu_relax();
    }
    /* The last arrival stores the sense before it reads sleepers; a sleeper counts itself before it reads the
     * sense, under the lock the waker takes: one of the two sees the other. */
    uv_mutex_lock(&b->mu);
    atomic_fetch_add(&b->sleepers, 1);
    while (atomic_load(&b->sense) != my)
        uv_cond_wait(&b->cv, &b->mu);
    atomic_fetch_sub(&b->sleepers, 1);
    uv_mutex_unlock(&b->mu);
}

/* Steps neurons [f, f + count) of a lif population with a variant set or a per-neuron drive (imported neurons). */
static uint32_t sm__step_general(sm_sim_t *s, const sm_lif_consts_t *c, const sm_pop_t *pp, size_t slot, uint32_t f,
                                 uint32_t count, uint32_t *spk)
{
    size_t n = s->d->n;
    const double *drive = pp->drive ? pp->drive + (f - pp->first) : NULL;
    if (s->opts.single) {
        float *in_e = s->acc ? (float *)s->acc + slot * n + f : NULL;
        float *in_i = s->acc ? (float *)s->acc + ((size_t)s->R + slot) * n + f : NULL;
        return (s->acc ? sm_core_lifx_step_f32 : sm_core_lifx_step_f32_direct)(
            c, drive, count, (float *)s->v + f, (float *)s->ge + f, (float *)s->gi + f, s->ref + f, in_e, in_i, f, spk);
    }
    double *in_e = s->acc ? (double *)s->acc + slot * n + f : NULL;
    double *in_i = s->acc ? (double *)s->acc + ((size_t)s->R + slot) * n + f : NULL;
    return (s->acc ? sm_core_lifx_step : sm_core_lifx_step_direct)(
        c, drive, count, (double *)s->v + f, (double *)s->ge + f, (double *)s->gi + f, s->ref + f, in_e, in_i, f, spk);
}

/* update (with deliver fused in) of the worker's runs [r0, r1): their pieces add the inputs that arrived for
 * this step, then step their neurons; spikes come out in global neuron order. */
static uint32_t sm__update_runs(sm_sim_t *s, sm__worker_t *w, uint64_t step, uint32_t r0, uint32_t r1, uint32_t *spk)
{
    const sm_deploy_t *d = s->d;
    size_t n = d->n, slot = (size_t)(step % s->R);
    uint32_t ns = 0;
    for (uint32_t r = r0; r < r1; r++) {
        uint32_t pop = w->runs[3 * r], f = w->runs[3 * r + 1], count = w->runs[3 * r + 2];
        const sm_lif_consts_t *c = &s->consts[pop];
        const sm_pop_t *pp = &d->net->pops[pop];
        if (pp->model == SM_MODEL_POISSON) {
            ns += sm_core_poisson_step(s->p_spike[pop], d->seed, count, f, step, spk + ns);
        } else if (pp->model == SM_MODEL_SPIKE_SOURCE) {
            ns += sm_core_source_step(pp->spikes, pp->nspikes, step, f - pp->first, count, f, spk + ns);
        } else if (c->general || pp->drive) {
            ns += sm__step_general(s, c, pp, slot, f, count, spk + ns);
        } else if (s->opts.single) {
            float *in_e = s->acc ? (float *)s->acc + slot * n + f : NULL;
            float *in_i = s->acc ? (float *)s->acc + ((size_t)s->R + slot) * n + f : NULL;
            ns += (s->acc ? sm_core_lifq_step_f32 : sm_core_lifq_step_f32_direct)(
                c, count, (float *)s->v + f, (float *)s->ge + f, (float *)s->gi + f, in_e, in_i, &w->refq[r], step,
                f, spk + ns);
        } else {
            double *in_e = s->acc ? (double *)s->acc + slot * n + f : NULL;
            double *in_i = s->acc ? (double *)s->acc + ((size_t)s->R + slot) * n + f : NULL;
            ns += (s->acc ? sm_core_lifq_step : sm_core_lifq_step_direct)(
                c, count, (double *)s->v + f, (double *)s->ge + f, (double *)s->gi + f, in_e, in_i, &w->refq[r],
                step, f, spk + ns);
        }
    }
    return ns;
}

/* Waits until worker o has routed step - 1 (the inputs of `step` onto its neurons are complete); returns the
 * nanoseconds waited. It spins, then yields the CPU (with more threads than CPUs, o may need this one). */
static uint64_t sm__wait_routed(const sm__worker_t *o, uint64_t step)
{
    if (atomic_load_explicit(&o->routed, memory_order_acquire) >= step)
        return 0;
    uint64_t t0 = uv_hrtime();
    for (uint32_t spins = 0; atomic_load_explicit(&o->routed, memory_order_acquire) < step; spins++) {
        if (spins < 4096)
            sm__cpu_relax();
        else
            sched_yield();
    }
    return uv_hrtime() - t0;
}

/* update: the worker's own pieces first, then those it took from its neighbours, once each neighbour has routed
 * into them; spikes are laid out in global neuron order (the left neighbour's pieces' first). *waited gets the
 * nanoseconds spent waiting. */
static uint32_t sm__phase_update(sm_sim_t *s, sm__worker_t *w, uint64_t step, uint32_t *spk, uint64_t *waited)
{
    const uint32_t nl = w->nruns_left, no = w->nruns_own;
    *waited = 0;
    if (nl == 0 && nl + no == w->nruns)
        return sm__update_runs(s, w, step, 0, w->nruns, spk);
    /* the left part's spikes go first: the own part's are written past room for them, then moved down */
    const uint32_t lroom = nl ? sm__q_first(s, w->piece_lo) - sm__q_first(s, w->qlo) : 0;
    uint32_t ns_own = sm__update_runs(s, w, step, nl, nl + no, spk + lroom), ns = 0;
    if (nl) {
        *waited += sm__wait_routed(&s->workers[w->id - 1], step);
        ns = sm__update_runs(s, w, step, 0, nl, spk);
        if (ns != lroom && ns_own)
            memmove(spk + ns, spk + lroom, ns_own * sizeof *spk);
    }
    ns += ns_own;
    if (nl + no < w->nruns) {
        *waited += sm__wait_routed(&s->workers[w->id + 1], step);
        ns += sm__update_runs(s, w, step, nl + no, w->nruns, spk + ns);
    }
    return ns;
}

/* Prefetches the words of this worker's part of the row of spike k of worker u's list, in the order of all
 * workers' spikes (k may run past u's spikes into the next worker's). */
static inline void sm__fetch_row(const sm_sim_t *s, const sm__worker_t *w, uint32_t parity, uint32_t u, uint32_t k)
{
    while (u < s->nworkers && k >= s->workers[u].nspk[parity])
        k -= s->workers[u].nspk[parity], u++;
    if (u >= s->nworkers)
        return;
    const sm__drow_t *e = &s->workers[u].srec[parity][(size_t)k * s->nworkers + w->id];
    uint32_t c = e->count;
    uint64_t len = (c & SM__DROW_PAIRS) ? 2u * (uint64_t)(c & ~SM__DROW_PAIRS) : c;
    const char *nx = (const char *)((uintptr_t)(w->dword + e->off) & ~(uintptr_t)63);
    const char *ne = (const char *)(w->dword + e->off + len);
    for (int l = 0; l < 16 && nx < ne; l++, nx += 64)
        __builtin_prefetch(nx);
}

/* route: every spike becomes a packet of its piece's key; the cores on its multicast tree apply the synapses
 * of its row into their delay buffers (or, when every delay is one step, straight into ge and gi). Each worker
 * applies the synapses onto its own neurons, for all spikes in global order, so sums do not depend on the
 * number of workers. Traffic counters are folded lazily (sm__fold). */
#define SM__ROUTE(NAME, T, COUNT)                                                                              \
    static uint64_t NAME(sm_sim_t *s, const sm__worker_t *w, uint64_t step, uint32_t parity)                  \
    {                                                                                                         \
        uint32_t *synin = s->synin;                                                                           \
        (void)synin;                                                                                          \
        size_t n = s->d->n, off[128];                                                                         \
        T *tab[2] = {(T *)s->ge, (T *)s->gi}, *acc = (T *)s->acc;                                             \
        const uint32_t *dword = w->dword, W = s->nworkers;                                                    \
        /* each worker's part of a row is shorter with more workers: fetch further ahead */                   \
        const uint32_t ahead = W < 7 ? 2 + 2 * W : 16;                                                        \
        uint64_t ops = 0;                                                                                     \
        if (acc)                                                                                              \
            for (uint32_t k = 0; k < 128; k++)                                                                \
                off[k] = ((size_t)(k >> 6) * s->R + (size_t)((step + (k & 63u) + 1u) % s->R)) * n;            \
        for (uint32_t k = 0; k < ahead; k++) /* the first rows of the step */                                 \
            sm__fetch_row(s, w, parity, 0, k);                                                                \
        for (uint32_t u = 0; u < s->nworkers; u++) {                                                          \
            const sm__drow_t *rec = s->workers[u].srec[parity] + w->id;                                       \
            const uint32_t nspk = s->workers[u].nspk[parity];                                                 \
            for (uint32_t k = 0; k < nspk; k++) {                                                             \
                sm__fetch_row(s, w, parity, u, k + ahead); /* rows lie far apart: fetch the words early */    \
                const sm__drow_t *e = &rec[(size_t)k * W];                                                    \
                const uint32_t *wd = dword + e->off;                                                          \
                uint32_t cnt = e->count & ~SM__DROW_PAIRS;                                                    \
                ops += cnt;                                                                                   \
                if (e->count & SM__DROW_PAIRS) {                                                              \
                    for (uint32_t j = 0; j < cnt; j++) {                                                      \
                        uint32_t t = wd[2 * j];                                                               \
                        float wf;                                                                             \
                        memcpy(&wf, &wd[2 * j + 1], sizeof wf);                                               \
                        if (COUNT)                                                                            \
                            synin[SM_SYN_POST(t)]++;                                                          \
                        if (acc)                                                                              \
                            acc[off[t >> SM_SYN_POST_BITS] + SM_SYN_POST(t)] += (T)wf;                        \
                        else                                                                                  \
                            tab[t >> 31][SM_SYN_POST(t)] += (T)wf;                                            \
                    }                                                                                         \
                    continue;                                                                                 \
                }                                                                                             \
                T wt = (T)e->w;                                                                               \
                if (COUNT)                                                                                    \
                    for (uint32_t j = 0; j < cnt; j++)                                                        \
                        synin[SM_SYN_POST(wd[j])]++;                                                          \
                if (acc)                                                                                      \
                    for (uint32_t j = 0; j < cnt; j++)                                                        \
                        acc[off[wd[j] >> SM_SYN_POST_BITS] + SM_SYN_POST(wd[j])] += wt;                       \
                else                                                                                          \
                    for (uint32_t j = 0; j < cnt; j++)                                                        \
                        tab[wd[j] >> 31][SM_SYN_POST(wd[j])] += wt;                                           \
            }                                                                                                 \
        }                                                                                                     \
        return ops;                                                                                           \
    }

SM__ROUTE(sm__route_f64, double, 0)
SM__ROUTE(sm__route_f32, float, 0)
SM__ROUTE(sm__route_f64_count, double, 1)
SM__ROUTE(sm__route_f32_count, float, 1)

/* Timing model: each worker sums, per core it owns, the events its neurons received this step and the
 * neurons that were active (received events or spiked), into the step's parity, and clears the counts. */
static void sm__count_cores(sm_sim_t *s, const sm__worker_t *w, uint32_t parity)
{
    const sm_deploy_t *d = s->d;
    if (w->piece_lo >= w->piece_hi)
        return;
    uint32_t c0 = d->pieces[w->piece_lo].core, c1 = d->pieces[w->piece_hi - 1].core;
    for (uint32_t c = c0; c <= c1; c++) {
        uint64_t act = 0, syn = 0;
        uint32_t *in = s->synin + d->cores[c].first;
        for (uint32_t i = 0; i < d->cores[c].count; i++) {
            act += in[i] != 0;
            syn += in[i] & ~SM__SPIKED;
            in[i] = 0;
        }
        s->step_active[parity][c] = act;
        s->step_synops[parity][c] = syn;
    }
}

/* --profile's histogram bin of a phase that took ns nanoseconds: log2(ns) in steps of 1/SM__PROF_PER_OCTAVE. */
static uint32_t sm__prof_bin(uint64_t ns)
{
    if (ns < 1)
        return 0;
    double b = log2((double)ns) * SM__PROF_PER_OCTAVE;
    return b >= SM__PROF_BINS - 1 ? SM__PROF_BINS - 1 : (uint32_t)b;
}

/* Seconds at which --profile's histogram bin b starts (b + 0.5: its middle). */
static double sm__prof_edge(double b)
{
    return exp2(b / SM__PROF_PER_OCTAVE) * 1e-9;
}

/* Seconds of the median of a histogram of steps (the middle of its bin). */
static double sm__prof_median(const uint64_t *h, uint64_t steps)
{
    uint64_t seen = 0;
    for (uint32_t b = 0; b < SM__PROF_BINS; b++) {
        seen += h[b];
        if (steps > 0 && 2 * seen >= steps)
            return sm__prof_edge((double)b + 0.5);
    }
    return 0.0;
}

/* --profile's slow steps, from the histogram h of whole steps and the nanoseconds ns those in each bin took:
 * out[0] the median step's seconds, out[1] the steps in bins that start at SM_PROFILE_SLOW_FACTOR x that or more
 * (bins are 2% wide), out[2] the seconds those took beyond the median. */
void sm__prof_slow(const uint64_t *h, const uint64_t *ns, uint64_t steps, double out[3])
{
    double med = sm__prof_median(h, steps);
    out[0] = med;
    out[1] = out[2] = 0.0;
    if (med <= 0.0)
        return;
    for (uint32_t b = 0; b < SM__PROF_BINS; b++) {
        if (h[b] == 0 || sm__prof_edge(b) < SM_PROFILE_SLOW_FACTOR * med)
            continue;
        out[1] += (double)h[b];
        out[2] += (double)ns[b] * 1e-9 - (double)h[b] * med;
    }
}

/* Prefetches what a spike of neuron id touches at random once its step is updated: its delivery rows and its
 * counters. */
static inline void sm__fetch_spike(const sm_sim_t *s, uint32_t id)
{
    __builtin_prefetch(&s->drow[(size_t)id * s->nworkers]);
    __builtin_prefetch(&s->d->piece_of[id]);
    __builtin_prefetch(&s->neuron_pending[id], 1);
}

/* Runs `count` steps on one worker; every worker runs the same steps, meeting once per step. */
static void sm__steps(sm__worker_t *w, uint64_t first, uint64_t count)
{
    sm_sim_t *s = w->s;
    const sm_deploy_t *d = s->d;
    const int prof = s->opts.profile, bal = s->split == SM__SPLIT_ADAPT, timed = prof || bal;
    const size_t W = s->nworkers;
    const uint64_t neurons = sm__worker_neurons(s, w->id);
    for (uint64_t k = 0; k < count; k++) {
        uint64_t step = first + k, t0 = timed ? uv_hrtime() : 0, t1, t2, tb = 0, waited;
        uint32_t p = (uint32_t)(step & 1u), ns = sm__phase_update(s, w, step, w->spk[p], &waited);
        w->nspk[p] = ns;
        /* Each spike's delivery rows (a random read) are fetched once, here, by the worker of the neuron, and
         * laid out in spike order for every worker's route. */
        const uint32_t *sp = w->spk[p];
        for (uint32_t i = 0; i < ns && i < 8; i++)
            sm__fetch_spike(s, sp[i]);
        for (uint32_t i = 0; i < ns; i++) {
            if (i + 8 < ns)
                sm__fetch_spike(s, sp[i + 8]);
            memcpy(w->srec[p] + (size_t)i * W, s->drow + (size_t)sp[i] * W, W * sizeof *s->drow);
            s->piece_pending[d->piece_of[sp[i]]]++;
            s->neuron_pending[sp[i]]++;
        }
        if (s->synin)
            for (uint32_t i = 0; i < ns; i++)
                s->synin[w->spk[p][i]] |= SM__SPIKED;
        t1 = timed ? uv_hrtime() : 0;
        if (s->nworkers > 1)
            sm__spin_wait(&s->step_barrier, &w->sense);
        if (bal)
            tb = uv_hrtime();
        if (w->id == 0) { /* record: all workers' spikes of this step are final until step + 2 */
            for (uint32_t u = 0; u < s->nworkers; u++) {
                s->stats.spikes += s->workers[u].nspk[p];
                if (s->spikes_f)
                    sm__out_spikes(s, step, s->workers[u].spk[p], s->workers[u].nspk[p]);
                if (s->raster_rows)
                    sm__capture(s, step, s->workers[u].spk[p], s->workers[u].nspk[p]);
            }
            if (s->tm) { /* the previous step's core counts are complete: finish it; then this step's mesh */
                sm__timing_cores(s, p ^ 1u);
                sm__timing_mesh(s, step, p);
            }
        }
        t2 = prof ? uv_hrtime() : 0;
        if (s->synin) {
            w->ops += s->opts.single ? sm__route_f32_count(s, w, step, p) : sm__route_f64_count(s, w, step, p);
            sm__count_cores(s, w, p);
        } else {
            w->ops += s->opts.single ? sm__route_f32(s, w, step, p) : sm__route_f64(s, w, step, p);
        }
        /* the inputs of the next step onto this worker's neurons are complete (a neighbour may update some) */
        atomic_store_explicit(&w->routed, step + 1, memory_order_release);
        uint64_t t3 = timed ? uv_hrtime() : 0;
        if (bal) { /* a step slowed by a moment of other work counts as SM__BAL_CLIP x the estimate */
            uint64_t upd = t1 - t0 - waited, rt = t3 - tb;
            if (w->bal_per_neuron > 0 && (double)upd > SM__BAL_CLIP * w->bal_per_neuron * (double)neurons)
                upd = (uint64_t)(SM__BAL_CLIP * w->bal_per_neuron * (double)neurons);
            if (w->bal_route > 0 && (double)rt > SM__BAL_CLIP * w->bal_route)
                rt = (uint64_t)(SM__BAL_CLIP * w->bal_route);
            w->bal_ns[0] += upd;
            w->bal_ns[1] += rt;
            w->bal_neurons += neurons;
            w->bal_steps++;
        }
        if (prof) {
            uint64_t took[3] = {t1 - t0, t3 - t2, t2 - t1};
            for (int ph = 0; ph < 3; ph++) {
                w->prof[ph] += (double)took[ph] * 1e-9;
                w->prof_hist[ph * SM__PROF_BINS + sm__prof_bin(took[ph])]++;
            }
            uint32_t b = sm__prof_bin(t3 - t0); /* the whole step: its bin, and the exact time in the bin */
            w->prof_hist[3 * SM__PROF_BINS + b]++;
            w->prof_slow_ns[b] += t3 - t0;
        }
    }
    if (s->nworkers > 1) /* every route of the batch is done before the batch returns */
        sm__spin_wait(&s->step_barrier, &w->sense);
    if (s->tm && w->id == 0 && count > 0) /* the batch's last step */
        sm__timing_cores(s, (uint32_t)((first + count - 1) & 1u));
}

static void sm__worker_main(void *arg)
{
    sm__worker_t *w = arg;
    sm_sim_t *s = w->s;
    uint64_t seen = 0;
    for (;;) {
        /* The next batch usually starts within microseconds (worker 0 only passes through the event loop):
         * with no more threads than CPUs, spin for up to 200 us before sleeping, as waking a sleeping thread
         * costs tens of microseconds on a virtual machine, on every batch. */
        if (s->spin_between) {
            uint64_t t0 = uv_hrtime();
            for (uint32_t spins = 1; atomic_load_explicit(&s->batches, memory_order_relaxed) == seen; spins++) {
                sm__cpu_relax();
                if (spins % 64 == 0 && uv_hrtime() - t0 > 200000)
                    break;
            }
        }
        uv_sem_wait(&w->go);
        seen++;
        if (s->quit)
            break;
        sm__steps(w, s->step, s->batch);
    }
}

/* Runs a batch of steps on every worker (worker 0 is the calling thread). */
static void sm__run_batch(sm_sim_t *s, uint64_t count)
{
    s->batch = count;
    atomic_fetch_add_explicit(&s->batches, 1, memory_order_relaxed);
    for (uint32_t w = 1; w < s->nworkers; w++)
        uv_sem_post(&s->workers[w].go);
    sm__steps(&s->workers[0], s->step, count);
    s->step += count;
    if (s->split != SM__SPLIT_OFF) /* every worker is past the batch's last barrier: the borders may move */
        sm__rebalance(s);
    uint64_t ops = 0;
    for (uint32_t w = 0; w < s->nworkers; w++)
        ops += s->workers[w].ops;
    s->stats.synaptic_ops = ops;
    s->stats.steps = s->step;
}

uint32_t sm_sim_step(sm_sim_t *s)
{
    uint32_t p = (uint32_t)(s->step & 1u), ns = 0;
    sm__run_batch(s, 1);
    for (uint32_t u = 0; u < s->nworkers; u++) {
        memcpy(s->spk + ns, s->workers[u].spk[p], s->workers[u].nspk[p] * sizeof *s->spk);
        ns += s->workers[u].nspk[p];
    }
    s->nspk = ns;
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
            sm_mesh_count_tree((sm_mesh_t *)&d->mesh, d->trees + d->tree_off[q],
                               (uint32_t)(d->tree_off[q + 1] - d->tree_off[q]), c);
        }
        s->piece_pending[q] = 0;
    }
    for (uint32_t i = 0; i < d->n; i++) {
        uint64_t c = s->neuron_pending[i];
        if (c == 0)
            continue;
        for (uint32_t w = 0; w < s->nworkers; w++) {
            const sm__drow_t *e = &s->drow[(size_t)i * s->nworkers + w];
            uint32_t cnt = e->count & ~SM__DROW_PAIRS, stride = (e->count & SM__DROW_PAIRS) ? 2 : 1;
            for (uint32_t k = 0; k < cnt; k++) {
                uint32_t post = SM_SYN_POST(s->workers[w].dword[e->off + (uint64_t)k * stride]);
                s->cc[d->pieces[d->piece_of[post]].core].synaptic_ops += c;
            }
        }
        s->neuron_pending[i] = 0;
    }
    uint64_t nu = 0;
    for (uint32_t c = 0; c < d->ncores; c++) {
        s->cc[c].neuron_updates = (uint64_t)d->cores[c].count * s->step;
        s->cc[c].packets_in = d->mesh.core_packets[(size_t)d->cores[c].tile * d->chip.cores_per_tile + d->cores[c].slot];
        nu += s->cc[c].neuron_updates;
    }
    s->stats.neuron_updates = nu;
}

const sm_stats_t *sm_sim_stats(sm_sim_t *s)
{
    sm__fold(s);
    if (s->thread_prof) {
        double *med = s->thread_prof + 3 * (size_t)s->nworkers;
        for (uint32_t w = 0; w < s->nworkers; w++) {
            memcpy(s->thread_prof + 3 * (size_t)w, s->workers[w].prof, sizeof s->workers[w].prof);
            for (int ph = 0; ph < 3; ph++)
                med[3 * (size_t)w + ph] = sm__prof_median(s->workers[w].prof_hist + ph * SM__PROF_BINS, s->step);
            sm__prof_slow(s->workers[w].prof_hist + 3 * SM__PROF_BINS, s->workers[w].prof_slow_ns, s->step,
                          med + 3 * (size_t)s->nworkers + 3 * (size_t)w);
        }
        memcpy(s->stats.phase_seconds, s->workers[0].prof, sizeof s->stats.phase_seconds);
        s->stats.thread_phase_seconds = s->thread_prof;
        s->stats.thread_phase_median = med;
        s->stats.thread_slow_steps = med + 3 * (size_t)s->nworkers;
    }
    for (uint32_t w = 0; w < s->nworkers; w++)
        s->thread_neurons[w] = sm__worker_neurons(s, w);
    s->stats.thread_neurons = s->thread_neurons;
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
static double sm__get(const sm_sim_t *s, const void *a, uint32_t id)
{
    return s->opts.single ? (double)((const float *)a)[id] : ((const double *)a)[id];
}
double sm_sim_v(const sm_sim_t *s, uint32_t id)
{
    double v = sm__get(s, s->v, id);
    if (isfinite(v) || id >= s->net->n)
        return v;
    /* A refractory neuron of the queue kernels holds -inf (NaN when pm is 0): it is at its v_reset. */
    uint32_t lo = 0, hi = s->net->npops;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->net->pops[mid].first <= id)
            lo = mid;
        else
            hi = mid;
    }
    const sm_pop_t *pp = &s->net->pops[lo];
    if (pp->model != SM_MODEL_LIF || s->consts[lo].general || pp->drive)
        return v; /* stepped by the counter kernels: a non-finite v is the model's own */
    double r = s->consts[lo].v_reset;
    return s->opts.single ? (double)(float)r : r;
}
double sm_sim_ge(const sm_sim_t *s, uint32_t id) { return sm__get(s, s->ge, id); }
double sm_sim_gi(const sm_sim_t *s, uint32_t id) { return sm__get(s, s->gi, id); }
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
    /* Batches of steps sized to last about SM__BATCH_NS, from the speed of the previous batch. */
    uint64_t t0 = uv_hrtime(), count = s->next_batch ? s->next_batch : 1;
    if (count > s->nsteps - s->step)
        count = s->nsteps - s->step;
    if (count > 0 && !s->stop)
        sm__run_batch(s, count);
    uint64_t took = uv_hrtime() - t0 + 1;
    double want = (double)count * SM__BATCH_NS / (double)took;
    s->next_batch = want > 2.0 * (double)count ? 2 * count : want < 1.0 ? 1 : (uint64_t)want;
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
        sm__run_batch(s, 1);
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
    /* closing the signal handles gave SIGINT and SIGTERM back their default action: a second Ctrl-C would kill the
     * process while it writes its outputs and leave .part files; they are ignored until the outputs are written
     * (sm_sim_write_outputs, or sm_sim_destroy) */
    if (s->opts.handle_signals && s->opts.out_dir && !s->signals_ignored) {
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        s->signals_ignored = 1;
    }
}

/* Gives SIGINT and SIGTERM their default action back after sm__close_all ignored them. */
void sm__signals_back(sm_sim_t *s)
{
    if (s->signals_ignored) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        s->signals_ignored = 0;
    }
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
    sm__signals_back(s);
    sm__stop_workers(s);
    if (s->step_barrier.ready) {
        uv_mutex_destroy(&s->step_barrier.mu);
        uv_cond_destroy(&s->step_barrier.cv);
    }
    sm__out_abort(s);
    sm__free_state(s);
    free(s);
}
