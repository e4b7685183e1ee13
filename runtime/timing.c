/* runtime/timing.c: the modelled time and energy of each timestep: core compute time from operation counts,
 * mesh drain time (zero-load from the multicast trees, or from the cycle-level model), barrier cost. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/sim_internal.h"

#define SM__TOP 5

struct sm__timing {
    const sm_costs_t *c;
    int cycle;               /* drain time from the cycle-level model */
    sm_noc_t *noc;
    double barrier_ns;
    double *piece_lat_ns;    /* zero-load time of one packet of the piece to its last core */
    uint32_t *piece_ew, *piece_ns, *piece_chip;
    uint32_t *child0;        /* cycle model: first child of every node of every recorded tree */
    uint64_t pending;        /* step whose mesh part is done and core part is not (UINT64_MAX: none) */
    double pending_drain_ns;
    uint64_t pending_ew, pending_ns, pending_chip, pending_deliv, pending_packets;
    /* results */
    double *step_ns;         /* modelled time of every step (up to cap) */
    uint64_t nsteps, cap;
    double total_ns, max_ns, energy_pj[SM__ENERGY_KINDS];
    double *core_busy_ns, *core_energy_pj;
    uint64_t core_bound, mesh_bound, over_dt;
    sm_timing_step_t top[SM__TOP];
    uint32_t ntop;
};

static void sm__on_deliver(void *ctx, uint64_t tag, uint32_t tile, uint32_t ncores, uint64_t latency, uint32_t hops);

int sm__timing_create(sm_sim_t *s, sm_errbuf_t *eb)
{
    const sm_deploy_t *d = s->d;
    const sm_chip_t *chip = &d->chip;
    sm__timing_t *t = calloc(1, sizeof *t);
    if (!t)
        return sm_errorf(eb, SM_ENOMEM, "out of memory");
    s->tm = t;
    t->c = &chip->costs;
    t->cycle = s->opts.mesh_cycle;
    t->pending = UINT64_MAX;
    t->barrier_ns = chip->costs.barrier_ns + chip->costs.barrier_hop_ns * (double)(chip->width - 1 + chip->height - 1);
    t->piece_lat_ns = calloc(d->npieces + 1, sizeof *t->piece_lat_ns);
    t->piece_ew = calloc(d->npieces + 1, sizeof *t->piece_ew);
    t->piece_ns = calloc(d->npieces + 1, sizeof *t->piece_ns);
    t->piece_chip = calloc(d->npieces + 1, sizeof *t->piece_chip);
    t->core_busy_ns = calloc(d->ncores + 1, sizeof *t->core_busy_ns);
    t->core_energy_pj = calloc(d->ncores + 1, sizeof *t->core_energy_pj);
    uint32_t tiles = sm_mesh_tiles(&d->mesh);
    double *arrive = calloc(tiles, sizeof *arrive);
    if (!t->piece_lat_ns || !t->piece_ew || !t->piece_ns || !t->piece_chip || !t->core_busy_ns || !t->core_energy_pj || !arrive) {
        free(arrive);
        return sm_errorf(eb, SM_ENOMEM, "out of memory for the timing model");
    }
    /* Zero-load time of each piece's packet: along its tree (root first, parents before children). */
    for (uint32_t q = 0; q < d->npieces; q++) {
        const uint64_t *tr = d->trees + d->tree_off[q];
        uint32_t n = (uint32_t)(d->tree_off[q + 1] - d->tree_off[q]);
        double last = 0;
        for (uint32_t i = 0; i < n; i++)
            arrive[tr[i] >> 32] = 0;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t tile = (uint32_t)(tr[i] >> 32), r = (uint32_t)tr[i];
            for (int dd = 0; dd < SM_NDIRS; dd++) {
                if (!(r & SM_ROUTE_LINK((uint32_t)dd)))
                    continue;
                int ew = dd == SM_DIR_E || dd == SM_DIR_W, inter = sm_mesh_link_is_inter(&d->mesh, tile, dd);
                arrive[sm_mesh_neighbor(&d->mesh, tile, dd)] =
                    arrive[tile] + (inter ? t->c->hop_chip_ns : ew ? t->c->hop_ew_ns : t->c->hop_ns_ns);
                if (inter)
                    t->piece_chip[q]++;
                else if (ew)
                    t->piece_ew[q]++;
                else
                    t->piece_ns[q]++;
            }
            if ((r >> 4) && arrive[tile] + t->c->spike_tile_ns > last)
                last = arrive[tile] + t->c->spike_tile_ns;
        }
        t->piece_lat_ns[q] = last;
    }
    free(arrive);
    if (t->cycle) {
        int rc = sm_noc_create(&t->noc, (sm_mesh_t *)&d->mesh, &chip->noc, eb);
        if (rc)
            return rc;
        t->child0 = malloc((d->tree_off[d->npieces] + 1) * sizeof *t->child0);
        if (!t->child0)
            return sm_errorf(eb, SM_ENOMEM, "out of memory for the cycle-level mesh");
        for (uint32_t q = 0; q < d->npieces; q++)
            sm_noc_tree_children(d->trees + d->tree_off[q], (uint32_t)(d->tree_off[q + 1] - d->tree_off[q]),
                                 t->child0 + d->tree_off[q]);
        if (s->opts.out_dir)
            sm_noc_on_deliver(t->noc, sm__on_deliver, s);
    }
    if (s->opts.out_dir) { /* trace.json: the first steps, the first cores */
        sm__trace_t *tr = &s->trace;
        tr->max_steps = s->nsteps < SM__TRACE_STEPS ? s->nsteps : SM__TRACE_STEPS;
        tr->ncores = d->ncores < SM__TRACE_CORES ? d->ncores : SM__TRACE_CORES;
        tr->steps = calloc(tr->max_steps + 1, sizeof *tr->steps);
        tr->core_ns = calloc(tr->max_steps * tr->ncores + 1, sizeof *tr->core_ns);
        if (!tr->steps || !tr->core_ns)
            return sm_errorf(eb, SM_ENOMEM, "out of memory for trace.json");
    }
    return 0;
}

/* Cycle-level mesh deliveries: the latency histogram of latency.csv. */
static void sm__on_deliver(void *ctx, uint64_t tag, uint32_t tile, uint32_t ncores, uint64_t latency, uint32_t hops)
{
    sm__trace_t *tr = &((sm_sim_t *)ctx)->trace;
    (void)tag;
    (void)tile;
    (void)hops;
    if (latency >= tr->nlat) {
        uint64_t nn = tr->nlat ? tr->nlat : 64;
        while (nn <= latency)
            nn *= 2;
        uint64_t *nh = realloc(tr->lat_hist, nn * sizeof *nh);
        if (!nh)
            return;
        memset(nh + tr->nlat, 0, (nn - tr->nlat) * sizeof *nh);
        tr->lat_hist = nh;
        tr->nlat = nn;
    }
    tr->lat_hist[latency] += ncores;
}

void sm__timing_destroy(sm__timing_t *t)
{
    if (!t)
        return;
    sm_noc_destroy(t->noc);
    free(t->piece_lat_ns);
    free(t->piece_ew);
    free(t->piece_ns);
    free(t->piece_chip);
    free(t->child0);
    free(t->core_busy_ns);
    free(t->core_energy_pj);
    free(t->step_ns);
    free(t);
}

/* Mesh part of a step: the packets of its spikes cross the mesh. */
void sm__timing_mesh(sm_sim_t *s, uint64_t step, uint32_t parity)
{
    sm__timing_t *t = s->tm;
    const sm_deploy_t *d = s->d;
    double drain = 0;
    uint64_t ew = 0, ns = 0, chip = 0, deliv = 0, packets = 0;
    uint64_t start = t->noc ? sm_noc_now(t->noc) : 0;
    for (uint32_t u = 0; u < s->nworkers; u++) {
        const sm__worker_t *w = &s->workers[u];
        for (uint32_t k = 0; k < w->nspk[parity]; k++) {
            uint32_t q = d->piece_of[w->spk[parity][k]];
            if (d->pieces[q].ndest == 0)
                continue;
            packets++;
            ew += t->piece_ew[q];
            ns += t->piece_ns[q];
            chip += t->piece_chip[q];
            deliv += d->pieces[q].ndest;
            if (t->cycle)
                sm_noc_inject_tree(t->noc, d->trees + d->tree_off[q], t->child0 + d->tree_off[q], step,
                                   d->pieces[q].ndest);
            else if (t->piece_lat_ns[q] > drain)
                drain = t->piece_lat_ns[q];
        }
    }
    if (t->cycle) { /* the mesh runs until every packet of the step has arrived */
        sm_noc_drain(t->noc, UINT64_C(1) << 40);
        uint64_t last = sm_noc_last_delivery(t->noc);
        drain = last > start ? (double)(last - start) * t->c->cycle_ns : 0.0;
    }
    t->pending = step;
    t->pending_drain_ns = drain;
    t->pending_ew = ew;
    t->pending_ns = ns;
    t->pending_chip = chip;
    t->pending_deliv = deliv;
    t->pending_packets = packets;
}

/* Core part of the pending step, from the per-core counts the workers left in the parity's arrays. */
void sm__timing_cores(sm_sim_t *s, uint32_t parity)
{
    sm__timing_t *t = s->tm;
    const sm_deploy_t *d = s->d;
    const sm_costs_t *c = t->c;
    if (t->pending == UINT64_MAX)
        return;
    double slowest = 0, e[SM__ENERGY_KINDS] = {0};
    uint32_t slow_core = 0;
    for (uint32_t k = 0; k < d->ncores; k++) {
        uint64_t act = s->step_active[parity][k], syn = s->step_synops[parity][k], idle = d->cores[k].count - act;
        double ns_ = (double)act * c->neuron_active_ns + (double)idle * c->neuron_idle_ns + (double)syn * c->syn_op_ns;
        double pj = (double)act * c->neuron_active_pj + (double)idle * c->neuron_idle_pj + (double)syn * c->syn_op_pj;
        e[SM_ENERGY_NEURON_ACTIVE] += (double)act * c->neuron_active_pj;
        e[SM_ENERGY_NEURON_IDLE] += (double)idle * c->neuron_idle_pj;
        e[SM_ENERGY_SYN_OP] += (double)syn * c->syn_op_pj;
        t->core_busy_ns[k] += ns_;
        t->core_energy_pj[k] += pj;
        s->cc[k].active_updates += act;
        if (ns_ > slowest) {
            slowest = ns_;
            slow_core = k;
        }
    }
    double total = slowest + t->pending_drain_ns + t->barrier_ns;
    e[SM_ENERGY_SPIKE_TILE] = (double)t->pending_deliv * c->spike_tile_pj;
    e[SM_ENERGY_HOP_EW] = (double)t->pending_ew * c->hop_ew_pj;
    e[SM_ENERGY_HOP_NS] = (double)t->pending_ns * c->hop_ns_pj;
    e[SM_ENERGY_HOP_CHIP] = (double)t->pending_chip * c->hop_chip_pj;
    e[SM_ENERGY_STATIC] = c->static_w * total * 1e3; /* W x ns = 1e-9 J = 1e3 pJ */
    for (int k = 0; k < SM__ENERGY_KINDS; k++)
        t->energy_pj[k] += e[k];
    t->total_ns += total;
    if (total > t->max_ns)
        t->max_ns = total;
    if (slowest >= t->pending_drain_ns)
        t->core_bound++;
    else
        t->mesh_bound++;
    if (total > s->net->dt * 1e6)
        t->over_dt++;
    if (t->nsteps == t->cap && t->cap < (UINT64_C(1) << 27)) {
        uint64_t nc = t->cap ? t->cap * 2 : 4096;
        double *n = realloc(t->step_ns, nc * sizeof *n);
        if (n) {
            t->step_ns = n;
            t->cap = nc;
        }
    }
    if (t->nsteps < t->cap)
        t->step_ns[t->nsteps] = total;
    t->nsteps++;
    /* the slowest steps, slowest first (ties: the earlier step first) */
    sm_timing_step_t rec = {.step = t->pending, .total_ns = total, .core_ns = slowest, .drain_ns = t->pending_drain_ns,
                            .barrier_ns = t->barrier_ns, .core = slow_core};
    uint32_t pos = t->ntop;
    while (pos > 0 && t->top[pos - 1].total_ns < total)
        pos--;
    if (pos < SM__TOP) {
        uint32_t last = t->ntop < SM__TOP ? t->ntop : SM__TOP - 1;
        memmove(t->top + pos + 1, t->top + pos, (last - pos) * sizeof *t->top);
        t->top[pos] = rec;
        if (t->ntop < SM__TOP)
            t->ntop++;
    }
    sm__trace_t *tr = &s->trace;
    if (tr->nsteps < tr->max_steps) {
        for (uint32_t k = 0; k < tr->ncores; k++) {
            uint64_t act = s->step_active[parity][k], idle = d->cores[k].count - act;
            tr->core_ns[tr->nsteps * tr->ncores + k] = (double)act * c->neuron_active_ns +
                                                       (double)idle * c->neuron_idle_ns +
                                                       (double)s->step_synops[parity][k] * c->syn_op_ns;
        }
        tr->steps[tr->nsteps++] = (sm__trace_step_t){.step = t->pending, .core_ns = slowest,
                                                     .drain_ns = t->pending_drain_ns, .barrier_ns = t->barrier_ns,
                                                     .packets = t->pending_packets,
                                                     .hops = t->pending_ew + t->pending_ns + t->pending_chip};
    }
    t->pending = UINT64_MAX;
}

static int sm__dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int sm_sim_timing(sm_sim_t *s, sm_timing_t *out)
{
    sm__timing_t *t = s->tm;
    memset(out, 0, sizeof *out);
    if (!t)
        return SM_EINVAL;
    out->cycle_model = t->cycle;
    out->steps = t->nsteps;
    out->total_ns = t->total_ns;
    out->mean_ns = t->nsteps ? t->total_ns / (double)t->nsteps : 0;
    out->max_ns = t->max_ns;
    out->barrier_ns = t->barrier_ns;
    out->core_bound_steps = t->core_bound;
    out->mesh_bound_steps = t->mesh_bound;
    out->steps_over_dt = t->over_dt;
    uint64_t n = t->nsteps < t->cap ? t->nsteps : t->cap;
    if (n > 0) {
        double *v = malloc(n * sizeof *v);
        if (!v)
            return SM_ENOMEM;
        memcpy(v, t->step_ns, n * sizeof *v);
        qsort(v, n, sizeof *v, sm__dcmp);
        out->p50_ns = v[(n - 1) / 2];
        out->p99_ns = v[(uint64_t)ceil(0.99 * (double)n) - 1];
        out->min_ns = v[0];
        free(v);
    }
    for (int k = 0; k < SM__ENERGY_KINDS; k++) {
        out->energy_pj[k] = t->energy_pj[k];
        out->total_energy_pj += t->energy_pj[k];
    }
    out->nslowest = t->ntop;
    memcpy(out->slowest, t->top, t->ntop * sizeof *t->top);
    out->core_busy_ns = t->core_busy_ns;
    out->core_energy_pj = t->core_energy_pj;
    out->noc = t->noc;
    return 0;
}
