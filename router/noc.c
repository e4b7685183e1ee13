/* router/noc.c: a cycle-level model of the mesh: input-queued routers with finite buffers, round-robin
 * arbitration, backpressure and drops, or ideal output-queued routers; BookSim2-style synthetic traffic. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spikemesh/router.h"

#define SM__PORTS 5 /* E, N, W, S, local (injection in, ejection out) */
#define SM__EJECT 4u

typedef struct {
    uint64_t created, ready, tag;
    uint32_t src, dst, key;
    uint32_t outs;  /* output ports still to serve at this router */
    uint32_t cores; /* local core bits for ejection */
    uint32_t hops, tile, indir; /* indir: direction of travel into this router + 1; 0 when injected */
    uint32_t node;              /* tree packets: this router's node in the tree */
    const uint64_t *tree;       /* tree packets: the recorded tree (tile << 32 | route), else NULL */
    const uint32_t *child0;     /* tree packets: index of each node's first child */
} sm__pkt_t;

typedef struct {
    uint32_t *buf;
    uint32_t head, n, cap;
} sm__q_t;

struct sm_noc {
    sm_mesh_t *m;
    sm_noc_params_t p;
    uint32_t tiles, ser; /* serialization: cycles a packet occupies a link */
    sm__pkt_t *pk;
    uint32_t npk, pkcap, *freel, nfree;
    sm__q_t *q;          /* [tiles * 5]: input queues (iq) or output queues (ideal) */
    uint64_t *busy;      /* [tiles * 5]: output port busy until */
    uint32_t *rr;        /* [tiles * 5]: round-robin pointer of each output */
    sm_noc_port_t *ports;/* [tiles * 5] */
    uint32_t *peak;      /* [tiles] */
    uint32_t *act, nact; /* tiles with queued packets (the only ones a cycle visits) */
    uint8_t *in_act;
    uint64_t now, live, last_delivery;
    sm_noc_totals_t tot;
    sm_noc_deliver_cb cb;
    void *ctx;
};

static int sm__q_push(sm__q_t *q, uint32_t v)
{
    if (q->n == q->cap) {
        uint32_t nc = q->cap ? q->cap * 2 : 8;
        uint32_t *nb = malloc((size_t)nc * sizeof *nb);
        if (!nb)
            return SM_ENOMEM;
        for (uint32_t i = 0; i < q->n; i++)
            nb[i] = q->buf[(q->head + i) % q->cap];
        free(q->buf);
        q->buf = nb;
        q->head = 0;
        q->cap = nc;
    }
    q->buf[(q->head + q->n) % q->cap] = v;
    q->n++;
    return 0;
}

static inline uint32_t sm__at_head(const sm__q_t *q) { return q->buf[q->head]; }

static inline void sm__q_pop(sm__q_t *q)
{
    q->head = (q->head + 1) % q->cap;
    q->n--;
}

int sm_noc_create(sm_noc_t **out, sm_mesh_t *m, const sm_noc_params_t *p, sm_errbuf_t *eb)
{
    *out = NULL;
    if (p->packet_flits < 1 || p->link_flits < 1 || p->hop_cycles_ew < 1 || p->hop_cycles_ns < 1)
        return sm_errorf(eb, SM_EINVAL, "packet flits, link flits per cycle and hop cycles must be at least 1");
    if (p->kind == SM_NOC_IQ && p->buffer_depth < 1)
        return sm_errorf(eb, SM_EINVAL, "an input-queued router needs buffers of at least 1 packet");
    sm_noc_t *n = calloc(1, sizeof *n);
    if (!n)
        return sm_errorf(eb, SM_ENOMEM, "out of memory");
    n->m = m;
    n->p = *p;
    n->tiles = sm_mesh_tiles(m);
    n->ser = (p->packet_flits + p->link_flits - 1) / p->link_flits;
    size_t np = (size_t)n->tiles * SM__PORTS;
    n->q = calloc(np, sizeof *n->q);
    n->busy = calloc(np, sizeof *n->busy);
    n->rr = calloc(np, sizeof *n->rr);
    n->ports = calloc(np, sizeof *n->ports);
    n->peak = calloc(n->tiles, sizeof *n->peak);
    n->act = calloc(n->tiles, sizeof *n->act);
    n->in_act = calloc(n->tiles, 1);
    if (!n->q || !n->busy || !n->rr || !n->ports || !n->peak || !n->act || !n->in_act) {
        sm_noc_destroy(n);
        return sm_errorf(eb, SM_ENOMEM, "out of memory");
    }
    *out = n;
    return 0;
}

void sm_noc_destroy(sm_noc_t *n)
{
    if (!n)
        return;
    if (n->q)
        for (size_t i = 0; i < (size_t)n->tiles * SM__PORTS; i++)
            free(n->q[i].buf);
    free(n->q);
    free(n->busy);
    free(n->rr);
    free(n->ports);
    free(n->peak);
    free(n->act);
    free(n->in_act);
    free(n->pk);
    free(n->freel);
    free(n);
}

void sm_noc_on_deliver(sm_noc_t *n, sm_noc_deliver_cb cb, void *ctx)
{
    n->cb = cb;
    n->ctx = ctx;
}

uint64_t sm_noc_now(const sm_noc_t *n) { return n->now; }
uint64_t sm_noc_in_flight(const sm_noc_t *n) { return n->live; }
uint64_t sm_noc_last_delivery(const sm_noc_t *n) { return n->last_delivery; }
sm_noc_totals_t sm_noc_totals(const sm_noc_t *n) { return n->tot; }
const sm_noc_port_t *sm_noc_ports(const sm_noc_t *n, uint32_t t) { return n->ports + (size_t)t * SM__PORTS; }
uint32_t sm_noc_peak_queue(const sm_noc_t *n, uint32_t t) { return n->peak[t]; }

static uint32_t sm__alloc(sm_noc_t *n)
{
    if (n->nfree)
        return n->freel[--n->nfree];
    if (n->npk == n->pkcap) {
        uint32_t nc = n->pkcap ? n->pkcap * 2 : 1024;
        sm__pkt_t *np = realloc(n->pk, (size_t)nc * sizeof *np);
        uint32_t *nf = realloc(n->freel, (size_t)nc * sizeof *nf);
        if (np)
            n->pk = np;
        if (nf)
            n->freel = nf;
        if (!np || !nf)
            return UINT32_MAX;
        n->pkcap = nc;
    }
    return n->npk++;
}

static void sm__free(sm_noc_t *n, uint32_t i)
{
    n->freel[n->nfree++] = i;
    n->live--;
}

static int sm__xy(const sm_mesh_t *m, uint32_t cur, uint32_t dst)
{
    uint32_t cx = cur % m->width, cy = cur / m->width, dx = dst % m->width, dy = dst / m->width;
    return dx > cx ? SM_DIR_E : dx < cx ? SM_DIR_W : dy > cy ? SM_DIR_N : dy < cy ? SM_DIR_S : -1;
}

/* Output ports of packet p at its router: XY for unicast, the table (or straight on) for multicast. */
static void sm__route_here(sm_noc_t *n, sm__pkt_t *p)
{
    if (p->tree) { /* the route word recorded for this router of the tree */
        uint32_t r = (uint32_t)p->tree[p->node];
        p->outs = (r & SM_ROUTE_LINKS) | ((r >> 4) ? 1u << SM__EJECT : 0u);
        p->cores = r >> 4;
        return;
    }
    if (p->dst != UINT32_MAX) {
        int d = sm__xy(n->m, p->tile, p->dst);
        p->outs = d < 0 ? 1u << SM__EJECT : 1u << d;
        p->cores = d < 0 ? 1u : 0u;
        return;
    }
    uint32_t r;
    if (!sm_table_lookup(&n->m->tables[p->tile], p->key, &r))
        r = p->indir ? SM_ROUTE_LINK(p->indir - 1u) : 0u;
    p->outs = (r & SM_ROUTE_LINKS) | ((r >> 4) ? 1u << SM__EJECT : 0u);
    p->cores = r >> 4;
}

/* Destination cores a multicast packet still reaches from router t through the ports in outs (cores: the
 * local cores among them): what a drop there loses. */
static uint64_t sm__dests_below(sm_noc_t *n, uint32_t t, uint32_t outs, uint32_t cores, uint32_t key)
{
    uint64_t total = (outs >> SM__EJECT) & 1u ? (uint64_t)__builtin_popcount(cores) : 0u;
    for (int d = 0; d < SM_NDIRS; d++) {
        uint32_t nb = (outs & (1u << d)) ? sm_mesh_neighbor(n->m, t, d) : UINT32_MAX, r;
        if (nb == UINT32_MAX)
            continue;
        if (!sm_table_lookup(&n->m->tables[nb], key, &r))
            r = SM_ROUTE_LINK((uint32_t)d); /* default routing: straight on */
        total += sm__dests_below(n, nb, (r & SM_ROUTE_LINKS) | ((r >> 4) ? 1u << SM__EJECT : 0u), r >> 4, key);
    }
    return total;
}

/* Destination cores in the subtree below node of a recorded tree (the node's own cores included). */
static uint64_t sm__tree_below(const uint64_t *tree, const uint32_t *child0, uint32_t node)
{
    uint32_t r = (uint32_t)tree[node];
    uint64_t total = (uint64_t)__builtin_popcount(r >> 4);
    uint32_t c = child0[node];
    for (uint32_t d = 0; d < SM_NDIRS; d++)
        if (r & SM_ROUTE_LINK(d))
            total += sm__tree_below(tree, child0, c++);
    return total;
}

/* Destination copies a packet at its router still owes through the ports in outs: what a drop there loses. */
static uint64_t sm__owed(sm_noc_t *n, const sm__pkt_t *p, uint32_t outs)
{
    if (p->dst != UINT32_MAX)
        return 1;
    uint64_t total = (outs >> SM__EJECT) & 1u ? (uint64_t)__builtin_popcount(p->cores) : 0u;
    if (!p->tree)
        return total + sm__dests_below(n, p->tile, outs & SM_ROUTE_LINKS, 0, p->key);
    uint32_t r = (uint32_t)p->tree[p->node], c = p->child0[p->node];
    for (uint32_t d = 0; d < SM_NDIRS; d++) {
        if (!(r & SM_ROUTE_LINK(d)))
            continue;
        if (outs & (1u << d))
            total += sm__tree_below(p->tree, p->child0, c);
        c++;
    }
    return total;
}

/* Queues packet i at its router: into its input port (iq) or into every output it needs (ideal). */
static int sm__enqueue(sm_noc_t *n, uint32_t i, uint32_t port)
{
    sm__pkt_t *p = &n->pk[i];
    size_t base = (size_t)p->tile * SM__PORTS;
    if (!n->in_act[p->tile]) {
        n->in_act[p->tile] = 1;
        n->act[n->nact++] = p->tile;
    }
    if (n->p.kind == SM_NOC_IQ)
        return sm__q_push(&n->q[base + port], i);
    for (uint32_t o = 0; o < SM__PORTS; o++) {
        if (!(p->outs & (1u << o)))
            continue;
        sm__q_t *q = &n->q[base + o];
        if (sm__q_push(q, i))
            return SM_ENOMEM;
        /* keep each output queue in order of readiness (stable: ties keep arrival order) */
        for (uint32_t k = q->n - 1; k > 0; k--) {
            uint32_t a = (q->head + k - 1) % q->cap, b = (q->head + k) % q->cap;
            if (n->pk[q->buf[a]].ready <= n->pk[q->buf[b]].ready)
                break;
            uint32_t tmp = q->buf[a];
            q->buf[a] = q->buf[b];
            q->buf[b] = tmp;
        }
    }
    return 0;
}

int sm_noc_inject(sm_noc_t *n, uint32_t src, uint32_t dst, uint32_t key, uint64_t tag)
{
    return sm_noc_inject_copies(n, src, dst, key, tag, UINT64_MAX);
}

/* Injects one packet at tile src: unicast to dst, multicast by key through the tables, or (tree != NULL) along a
 * recorded tree. copies: destination cores it counts in `sent` (UINT64_MAX: found by walking its route). */
static int sm__inject(sm_noc_t *n, uint32_t src, uint32_t dst, uint32_t key, const uint64_t *tree,
                      const uint32_t *child0, uint64_t tag, uint64_t copies)
{
    if (src >= n->tiles || (dst != UINT32_MAX && dst >= n->tiles))
        return SM_EINVAL;
    uint32_t i = sm__alloc(n);
    if (i == UINT32_MAX)
        return SM_ENOMEM;
    sm__pkt_t *p = &n->pk[i];
    memset(p, 0, sizeof *p);
    p->created = p->ready = n->now;
    p->tag = tag;
    p->src = p->tile = src;
    p->dst = dst;
    p->key = key;
    p->tree = tree;
    p->child0 = child0;
    n->live++;
    sm__route_here(n, p);
    if (copies == UINT64_MAX)
        copies = dst != UINT32_MAX ? 1u : sm__owed(n, p, p->outs);
    n->tot.sent += copies;
    n->tot.packets_injected++;
    if (p->outs == 0) { /* nowhere to go */
        sm__free(n, i);
        return 0;
    }
    return sm__enqueue(n, i, SM__EJECT);
}

int sm_noc_inject_copies(sm_noc_t *n, uint32_t src, uint32_t dst, uint32_t key, uint64_t tag, uint64_t copies)
{
    return sm__inject(n, src, dst, key, NULL, NULL, tag, copies);
}

int sm_noc_inject_tree(sm_noc_t *n, const uint64_t *tree, const uint32_t *child0, uint64_t tag, uint64_t copies)
{
    return sm__inject(n, (uint32_t)(tree[0] >> 32), UINT32_MAX, 0, tree, child0, tag, copies);
}

void sm_noc_tree_children(const uint64_t *tree, uint32_t n, uint32_t *child0)
{
    uint32_t next = 1;
    for (uint32_t i = 0; i < n; i++) {
        child0[i] = next;
        next += (uint32_t)__builtin_popcount((uint32_t)tree[i] & SM_ROUTE_LINKS);
    }
}

static uint32_t sm__hop(const sm_noc_t *n, uint32_t t, uint32_t d)
{
    if (sm_mesh_link_is_inter(n->m, t, (int)d))
        return n->p.chip_hop_cycles ? n->p.chip_hop_cycles : n->p.hop_cycles_ew;
    return d == SM_DIR_E || d == SM_DIR_W ? n->p.hop_cycles_ew : n->p.hop_cycles_ns;
}

/* Cycles a packet occupies output o of tile t. */
static uint32_t sm__ser(const sm_noc_t *n, uint32_t t, uint32_t o)
{
    if (o < 4 && n->p.chip_link_flits && sm_mesh_link_is_inter(n->m, t, (int)o))
        return (n->p.packet_flits + n->p.chip_link_flits - 1) / n->p.chip_link_flits;
    return n->ser;
}

/* Sends packet i from its router through output o (grant at the current cycle). */
static void sm__send(sm_noc_t *n, uint32_t i, uint32_t o)
{
    sm__pkt_t *p = &n->pk[i];
    size_t po = (size_t)p->tile * SM__PORTS + o;
    n->ports[po].packets++;
    n->ports[po].flits += n->p.packet_flits;
    uint32_t ser = sm__ser(n, p->tile, o);
    n->ports[po].busy_cycles += ser;
    n->busy[po] = n->now + ser;
    p->outs &= ~(1u << o);
    if (o == SM__EJECT) {
        uint32_t nc = (uint32_t)__builtin_popcount(p->cores);
        n->tot.delivered += nc;
        if (n->now + n->ser > n->last_delivery)
            n->last_delivery = n->now + n->ser;
        if (n->cb)
            n->cb(n->ctx, p->tag, p->tile, nc, n->now + n->ser - p->created, p->hops);
        return;
    }
    uint32_t c = sm__alloc(n);
    if (c == UINT32_MAX) { /* out of memory: count the copies as dropped rather than lose them silently */
        n->tot.dropped += sm__owed(n, p, 1u << o);
        n->ports[po].drops++;
        return;
    }
    p = &n->pk[i]; /* the pool may have moved */
    sm__pkt_t *q = &n->pk[c];
    *q = *p;
    q->tile = sm_mesh_neighbor(n->m, p->tile, (int)o);
    q->hops = p->hops + 1;
    q->indir = o + 1;
    if (q->tree)
        q->node = p->child0[p->node] + (uint32_t)__builtin_popcount((uint32_t)p->tree[p->node] & ((1u << o) - 1u));
    q->ready = n->now + sm__hop(n, p->tile, o);
    n->live++;
    n->tot.link_traversals++;
    sm__route_here(n, q);
    sm__enqueue(n, c, (o + 2) % 4);
}

static void sm__cycle_iq(sm_noc_t *n)
{
    const uint32_t depth = n->p.buffer_depth, nact = n->nact;
    for (uint32_t a = 0; a < nact; a++) {
        uint32_t t = n->act[a];
        size_t base = (size_t)t * SM__PORTS;
        uint32_t want = 0; /* outputs wanted by ready heads: most cycles, packets are still on their way */
        for (uint32_t in = 0; in < SM__PORTS; in++) {
            const sm__q_t *q = &n->q[base + in];
            if (q->n && n->pk[sm__at_head(q)].ready <= n->now)
                want |= n->pk[sm__at_head(q)].outs;
        }
        for (uint32_t o = 0; o < SM__PORTS && want; o++) {
            if (!(want & (1u << o)))
                continue;
            uint32_t nb = o < 4 ? sm_mesh_neighbor(n->m, t, (int)o) : t;
            int wanted = 0, granted = 0;
            for (uint32_t k = 0; k < SM__PORTS && !granted; k++) {
                uint32_t in = (n->rr[base + o] + k) % SM__PORTS;
                sm__q_t *q = &n->q[base + in];
                if (q->n == 0)
                    continue;
                uint32_t i = sm__at_head(q);
                if (n->pk[i].ready > n->now || !(n->pk[i].outs & (1u << o)))
                    continue;
                wanted = 1;
                if (n->busy[base + o] > n->now)
                    break;
                if (o < 4 && n->q[(size_t)nb * SM__PORTS + (o + 2) % 4].n >= depth)
                    continue; /* no room downstream: backpressure */
                sm__send(n, i, o);
                n->rr[base + o] = (in + 1) % SM__PORTS;
                granted = 1;
            }
            if (wanted && !granted)
                n->ports[base + o].stall_cycles++;
        }
    }
    /* drops, then the heads that are done leave their buffers (their room shows upstream next cycle) */
    for (uint32_t a = 0; a < nact; a++) {
        uint32_t t = n->act[a];
        size_t base = (size_t)t * SM__PORTS;
        uint32_t occ = 0;
        for (uint32_t in = 0; in < SM__PORTS; in++) {
            sm__q_t *q = &n->q[base + in];
            while (q->n > 0) {
                uint32_t i = sm__at_head(q);
                sm__pkt_t *p = &n->pk[i];
                if (p->outs != 0 && n->p.drop_after && p->ready <= n->now && n->now - p->ready >= n->p.drop_after) {
                    if (n->p.reinject && in != SM__EJECT) {
                        sm__q_pop(q);
                        p->ready = n->now + 1; /* offered again, same route, from the injection queue */
                        sm__q_push(&n->q[base + SM__EJECT], i);
                        n->tot.reinjected++;
                        continue;
                    }
                    uint64_t lost = sm__owed(n, p, p->outs);
                    for (uint32_t o = 0; o < SM__PORTS; o++)
                        if (p->outs & (1u << o))
                            n->ports[base + o].drops++;
                    n->tot.dropped += lost;
                    p->outs = 0;
                }
                if (p->outs != 0)
                    break;
                sm__q_pop(q);
                sm__free(n, i);
            }
            if (in < 4)
                occ += q->n;
        }
        if (occ > n->peak[t])
            n->peak[t] = occ;
    }
}

static void sm__cycle_ideal(sm_noc_t *n)
{
    const uint32_t nact = n->nact;
    for (uint32_t a = 0; a < nact; a++) {
        uint32_t t = n->act[a];
        size_t base = (size_t)t * SM__PORTS;
        uint32_t occ = 0;
        for (uint32_t o = 0; o < SM__PORTS; o++) {
            sm__q_t *q = &n->q[base + o];
            occ += q->n;
            if (q->n == 0)
                continue;
            uint32_t i = sm__at_head(q);
            if (n->pk[i].ready > n->now)
                continue;
            if (n->busy[base + o] > n->now) {
                n->ports[base + o].stall_cycles++;
                continue;
            }
            sm__q_pop(q);
            sm__send(n, i, o);
            if (n->pk[i].outs == 0)
                sm__free(n, i);
        }
        if (occ > n->peak[t])
            n->peak[t] = occ;
    }
}

void sm_noc_cycle(sm_noc_t *n)
{
    /* Routers may be visited in any order within a cycle: what one sends is not ready at its neighbour before
     * the next cycle, and room freed in a buffer shows upstream only in the next cycle. */
    if (n->p.kind == SM_NOC_IQ)
        sm__cycle_iq(n);
    else
        sm__cycle_ideal(n);
    uint32_t k = 0;
    for (uint32_t a = 0; a < n->nact; a++) { /* keep the tiles that still hold packets */
        uint32_t t = n->act[a], held = 0;
        for (uint32_t q = 0; q < SM__PORTS; q++)
            held += n->q[(size_t)t * SM__PORTS + q].n;
        if (held)
            n->act[k++] = t;
        else
            n->in_act[t] = 0;
    }
    n->nact = k;
    n->now++;
}

/* The earliest cycle at which a queued packet can move: the smallest ready time of the queues' heads. */
static uint64_t sm__next_ready(const sm_noc_t *n)
{
    uint64_t best = UINT64_MAX;
    for (uint32_t a = 0; a < n->nact; a++) {
        size_t base = (size_t)n->act[a] * SM__PORTS;
        for (uint32_t q = 0; q < SM__PORTS; q++)
            if (n->q[base + q].n && n->pk[sm__at_head(&n->q[base + q])].ready < best)
                best = n->pk[sm__at_head(&n->q[base + q])].ready;
    }
    return best;
}

uint64_t sm_noc_drain(sm_noc_t *n, uint64_t max_cycles)
{
    uint64_t start = n->now, end = max_cycles > UINT64_MAX - start ? UINT64_MAX : start + max_cycles;
    while (n->live > 0 && n->now < end) {
        /* Nothing can move before the earliest head is ready, and nothing else happens meanwhile (no stalls,
         * no drops, no injection while draining): skip straight there. */
        uint64_t next = sm__next_ready(n);
        if (next != UINT64_MAX && next > n->now)
            n->now = next < end ? next : end;
        if (n->now >= end)
            break;
        sm_noc_cycle(n);
    }
    return n->now - start;
}

/* ---- synthetic traffic ---- */

static const char *const sm__pat_names[] = {"uniform", "transpose", "bitcomp", "tornado", "hotspot", "neighbor"};

int sm_pattern_parse(const char *name, sm_pattern_t *p)
{
    for (int k = 0; k < 6; k++)
        if (strcmp(name, sm__pat_names[k]) == 0) {
            *p = (sm_pattern_t)k;
            return 0;
        }
    return SM_ENOENT;
}

const char *sm_pattern_name(sm_pattern_t p) { return (unsigned)p < 6 ? sm__pat_names[p] : "?"; }

uint32_t sm_pattern_dest(sm_pattern_t p, uint32_t w, uint32_t h, uint32_t src, uint32_t r)
{
    uint32_t x = src % w, y = src / w, n = w * h, d;
    switch (p) {
    case SM_PAT_UNIFORM: /* any other tile, equally likely */
        d = (uint32_t)(((uint64_t)r * (n - 1)) >> 32);
        d += d >= src;
        break;
    case SM_PAT_TRANSPOSE: /* (x, y) -> (y, x); needs a square mesh */
        d = x < h && y < w ? x * w + y : UINT32_MAX;
        break;
    case SM_PAT_BITCOMP: /* the mirrored tile (bit complement of each coordinate on power-of-two sides) */
        d = (h - 1 - y) * w + (w - 1 - x);
        break;
    case SM_PAT_TORNADO: /* half way round each dimension, less one */
        d = ((y + (h + 1) / 2 - 1) % h) * w + (x + (w + 1) / 2 - 1) % w;
        break;
    case SM_PAT_HOTSPOT: { /* a quarter of the packets to the centre tile, the rest uniform */
        uint32_t hot = (h / 2) * w + w / 2;
        if ((r & 3u) == 0u) {
            d = hot;
        } else {
            d = (uint32_t)(((uint64_t)(r >> 2) * (n - 1)) >> 30);
            d += d >= src;
        }
        break;
    }
    case SM_PAT_NEIGHBOR: /* the next tile east, wrapping around the row */
        d = y * w + (x + 1) % w;
        break;
    default:
        d = UINT32_MAX;
    }
    return d == src || d >= n ? UINT32_MAX : d;
}

typedef struct {
    uint64_t warm, end; /* measurement window [warm, end) */
    uint64_t *lat;
    uint64_t nlat, cap;
    uint64_t hops, in_window_delivered, measured_delivered;
    double zero_load; /* sum of the measured packets' zero-load latencies */
    sm_noc_t *noc;
    int oom;
} sm__tr_t;

#define SM__TAG_MEASURED (UINT64_C(1) << 63)

static void sm__tr_deliver(void *ctx, uint64_t tag, uint32_t tile, uint32_t ncores, uint64_t latency, uint32_t hops)
{
    sm__tr_t *tr = ctx;
    uint64_t now = sm_noc_now(tr->noc);
    (void)tile;
    (void)ncores;
    if (now >= tr->warm && now < tr->end)
        tr->in_window_delivered++;
    if (!(tag & SM__TAG_MEASURED))
        return;
    tr->measured_delivered++;
    tr->hops += hops;
    tr->zero_load += (double)(tag & ~SM__TAG_MEASURED);
    if (tr->nlat == tr->cap) {
        uint64_t nc = tr->cap ? tr->cap * 2 : 4096;
        uint64_t *nl = realloc(tr->lat, nc * sizeof *nl);
        if (!nl) {
            tr->oom = 1;
            return;
        }
        tr->lat = nl;
        tr->cap = nc;
    }
    tr->lat[tr->nlat++] = latency;
}

static int sm__u64cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int sm_traffic_run(uint32_t w, uint32_t h, const sm_noc_params_t *p, sm_pattern_t pat, double rate,
                   uint64_t cycles, uint64_t seed, sm_traffic_result_t *res, uint64_t **latencies,
                   uint64_t *nlat, sm_errbuf_t *eb)
{
    sm_mesh_t m;
    sm_noc_t *noc;
    int rc;
    memset(res, 0, sizeof *res);
    if (!(rate >= 0.0 && rate <= 1.0))
        return sm_errorf(eb, SM_ERANGE, "rate %g is outside [0, 1] packets per node per cycle", rate);
    if (cycles < 10)
        return sm_errorf(eb, SM_ERANGE, "at least 10 cycles are needed, got %llu", (unsigned long long)cycles);
    if (pat == SM_PAT_TRANSPOSE && w != h)
        return sm_errorf(eb, SM_EINVAL, "transpose traffic needs a square mesh, got %ux%u", w, h);
    if ((rc = sm_mesh_init(&m, w, h, 1, 1)) != 0)
        return sm_errorf(eb, rc, "cannot build a %ux%u mesh", w, h);
    if ((rc = sm_noc_create(&noc, &m, p, eb)) != 0) {
        sm_mesh_free(&m);
        return rc;
    }
    sm__tr_t tr = {.warm = cycles / 5, .end = cycles, .noc = noc};
    sm_noc_on_deliver(noc, sm__tr_deliver, &tr);
    uint32_t tiles = w * h;
    uint32_t thresh = rate >= 1.0 ? UINT32_MAX : (uint32_t)(rate * 4294967296.0);
    uint64_t measured = 0, limit = cycles * 5;
    uint64_t held_warm = 0, held_end = 0; /* packets in the mesh and source queues at the window's edges */
    for (uint64_t c = 0; c < limit; c++) {
        if (c == tr.warm)
            held_warm = sm_noc_in_flight(noc);
        if (c == cycles)
            held_end = sm_noc_in_flight(noc);
        if (c >= cycles && tr.measured_delivered >= measured)
            break;
        for (uint32_t t = 0; t < tiles && rate > 0.0; t++) {
            uint32_t r[4];
            sm_philox(seed, SM_STREAM_TRAFFIC, t, (uint32_t)c, (uint32_t)(c >> 32), r);
            if (r[0] > thresh || (rate < 1.0 && r[0] == thresh))
                continue;
            uint32_t d = sm_pattern_dest(pat, w, h, t, r[1]);
            if (d == UINT32_MAX)
                continue;
            int in_window = c >= tr.warm && c < cycles;
            /* the tag of a measured packet carries its zero-load latency: hops x hop cycles + serialization */
            uint32_t dx = t % w > d % w ? t % w - d % w : d % w - t % w;
            uint32_t dy = t / w > d / w ? t / w - d / w : d / w - t / w;
            uint64_t zl = (uint64_t)dx * p->hop_cycles_ew + (uint64_t)dy * p->hop_cycles_ns +
                          (p->packet_flits + p->link_flits - 1) / p->link_flits;
            if (sm_noc_inject(noc, t, d, 0, in_window ? SM__TAG_MEASURED | zl : 0) != 0) {
                tr.oom = 1;
                break;
            }
            measured += (uint64_t)in_window;
        }
        sm_noc_cycle(noc);
        if (tr.oom)
            break;
    }
    if (tr.oom) {
        free(tr.lat);
        sm_noc_destroy(noc);
        sm_mesh_free(&m);
        return sm_errorf(eb, SM_ENOMEM, "out of memory: the network holds too many packets (rate %g too high?)",
                         rate);
    }
    /* Throughput per injecting tile: under transpose the diagonal sends nothing, for instance. */
    uint32_t injecting = 0;
    for (uint32_t t = 0; t < tiles; t++)
        injecting += sm_pattern_dest(pat, w, h, t, 0x9e3779b9u) != UINT32_MAX;
    double win = (double)(cycles - tr.warm) * (injecting ? injecting : 1);
    res->offered = rate;
    res->accepted = (double)tr.in_window_delivered / win;
    res->measured = measured;
    res->unfinished = measured - tr.measured_delivered;
    /* Let everything still in flight arrive (or be dropped) so that the totals add up. */
    tr.warm = tr.end = 0;
    sm_noc_drain(noc, 20 * cycles);
    res->in_flight = sm_noc_in_flight(noc);
    res->totals = sm_noc_totals(noc);
    res->packet_hops = res->totals.link_traversals;
    if (tr.nlat) {
        double sum = 0;
        for (uint64_t k = 0; k < tr.nlat; k++)
            sum += (double)tr.lat[k];
        res->mean_latency = sum / (double)tr.nlat;
        res->mean_hops = (double)tr.hops / (double)tr.nlat;
        qsort(tr.lat, tr.nlat, sizeof *tr.lat, sm__u64cmp);
        res->p99_latency = (double)tr.lat[(uint64_t)ceil(0.99 * (double)tr.nlat) - 1];
    }
    if (tr.measured_delivered)
        res->zero_load_latency = tr.zero_load / (double)tr.measured_delivered;
    /* Saturated: the window's packets did not all get through; or the mesh accepts less than it is offered
     * (by more than 1% plus four standard deviations of the sampling noise); or packets pile up: the backlog
     * grew over the window by more than four standard deviations of a steady backlog (taken as Poisson) plus
     * 0.2% of what was offered in it (one saturated link is enough to make it grow);
     * or queueing has made the mean latency five times the zero-load latency of the same packets. */
    double sd = sqrt(rate / win);
    res->backlog_growth = (double)held_end - (double)held_warm;
    res->saturated = res->unfinished > 0 || res->accepted < 0.99 * res->offered - 4.0 * sd ||
                     res->backlog_growth > 4.0 * sqrt((double)(held_warm > held_end ? held_warm : held_end) + 1.0) +
                                               0.002 * rate * win ||
                     (tr.measured_delivered && res->mean_latency > 5.0 * res->zero_load_latency);
    if (latencies) {
        *latencies = tr.lat;
        *nlat = tr.nlat;
    } else {
        free(tr.lat);
    }
    sm_noc_destroy(noc);
    sm_mesh_free(&m);
    return 0;
}
