/* loader/place.c: placing a partition's cores on the mesh: in order, greedily, or by recursive bisection of the
 * core graph with METIS along the mesh, each followed by local refinement; the placement file. */
#include <errno.h>
#include <math.h>
#include <metis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/json.h"
#include "spikemesh/loader.h"

static const char *const sm__placer_names[] = {"order", "greedy", "bisect"};

int sm_placer_parse(const char *name, sm_placer_t *p)
{
    for (int k = 0; k < 3; k++)
        if (strcmp(name, sm__placer_names[k]) == 0) {
            *p = (sm_placer_t)k;
            return 0;
        }
    return SM_ENOENT;
}

const char *sm_placer_name(sm_placer_t p) { return (unsigned)p < 3 ? sm__placer_names[p] : "?"; }

/* ---- the core graph: w(a, b) = neurons of core a with synapses onto core b (packets a sends b) ---- */

typedef struct {
    uint32_t n;       /* cores */
    uint64_t *ptr;    /* [n + 1] */
    uint32_t *adj;    /* neighbour */
    uint32_t *w;      /* weight, symmetric: w(a, b) + w(b, a) */
    uint64_t m;       /* entries */
} sm__cgraph_t;

static void sm__cgraph_free(sm__cgraph_t *g)
{
    free(g->ptr);
    free(g->adj);
    free(g->w);
    memset(g, 0, sizeof *g);
}

typedef struct {
    uint32_t a, b, w;
} sm__edge_t;

static int sm__edge_cmp(const void *x, const void *y)
{
    const sm__edge_t *p = x, *q = y;
    if (p->a != q->a)
        return p->a < q->a ? -1 : 1;
    return p->b < q->b ? -1 : p->b > q->b;
}

static int sm__cgraph_build(const sm_deploy_t *d, sm__cgraph_t *g)
{
    uint32_t nc = d->ncores, n = d->n;
    uint32_t *core_of = malloc(((size_t)n + 1) * sizeof *core_of);
    uint32_t *acc = calloc((size_t)nc + 1, sizeof *acc), *touched = malloc(((size_t)nc + 1) * sizeof *touched);
    uint64_t cap = 1024, ne = 0;
    sm__edge_t *e = malloc(cap * sizeof *e);
    memset(g, 0, sizeof *g);
    if (!core_of || !acc || !touched || !e)
        goto oom;
    for (uint32_t c = 0; c < nc; c++)
        for (uint32_t i = d->cores[c].first; i < d->cores[c].first + d->cores[c].count; i++)
            core_of[i] = c;
    for (uint32_t a = 0; a < nc; a++) {
        uint32_t nt = 0;
        for (uint32_t i = d->cores[a].first; i < d->cores[a].first + d->cores[a].count; i++) {
            uint32_t last = UINT32_MAX;
            for (uint64_t s = d->row[i]; s < d->row[i + 1]; s++) {
                uint32_t b = core_of[SM_SYN_POST(d->syn[s].tgt)];
                if (b == last)
                    continue; /* rows are sorted by target: one packet per (neuron, core) */
                last = b;
                if (b == a)
                    continue;
                if (acc[b]++ == 0)
                    touched[nt++] = b;
            }
        }
        if (ne + 2ull * nt > cap) {
            while (ne + 2ull * nt > cap)
                cap *= 2;
            sm__edge_t *ne_ = realloc(e, cap * sizeof *ne_);
            if (!ne_)
                goto oom;
            e = ne_;
        }
        for (uint32_t k = 0; k < nt; k++) {
            uint32_t b = touched[k];
            e[ne++] = (sm__edge_t){a, b, acc[b]};
            e[ne++] = (sm__edge_t){b, a, acc[b]};
            acc[b] = 0;
        }
    }
    qsort(e, ne, sizeof *e, sm__edge_cmp);
    g->n = nc;
    g->ptr = calloc((size_t)nc + 1, sizeof *g->ptr);
    g->adj = malloc((ne ? ne : 1) * sizeof *g->adj);
    g->w = malloc((ne ? ne : 1) * sizeof *g->w);
    if (!g->ptr || !g->adj || !g->w)
        goto oom;
    uint64_t m = 0;
    for (uint64_t k = 0; k < ne;) { /* merge (a, b) and (b, a) contributions */
        uint64_t j = k;
        uint64_t w = 0;
        while (j < ne && e[j].a == e[k].a && e[j].b == e[k].b)
            w += e[j++].w;
        g->adj[m] = e[k].b;
        g->w[m] = w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
        g->ptr[e[k].a + 1]++;
        m++;
        k = j;
    }
    for (uint32_t c = 0; c < nc; c++)
        g->ptr[c + 1] += g->ptr[c];
    g->m = m;
    free(core_of);
    free(acc);
    free(touched);
    free(e);
    return 0;
oom:
    free(core_of);
    free(acc);
    free(touched);
    free(e);
    sm__cgraph_free(g);
    return SM_ENOMEM;
}

static inline uint32_t sm__hops(uint32_t W, uint32_t t, uint32_t u)
{
    uint32_t tx = t % W, ty = t / W, ux = u % W, uy = u / W;
    return (tx > ux ? tx - ux : ux - tx) + (ty > uy ? ty - uy : uy - ty);
}

/* Sum over core pairs of packets x hops (each directed pair counted once): what the placers minimise. */
static double sm__cost(const sm__cgraph_t *g, const uint32_t *tile, uint32_t W)
{
    double c = 0;
    for (uint32_t a = 0; a < g->n; a++)
        for (uint64_t k = g->ptr[a]; k < g->ptr[a + 1]; k++)
            c += (double)g->w[k] * sm__hops(W, tile[a], tile[g->adj[k]]);
    return c / 2; /* the symmetric graph holds every pair twice */
}

/* Cost of core a if it sat on tile t (its links to every other core where they are). */
static double sm__cost_at(const sm__cgraph_t *g, const uint32_t *tile, uint32_t W, uint32_t a, uint32_t t)
{
    double c = 0;
    for (uint64_t k = g->ptr[a]; k < g->ptr[a + 1]; k++)
        c += (double)g->w[k] * sm__hops(W, t, tile[g->adj[k]]);
    return c;
}

/* ---- placers: each fills tile[] and slot[] of every core ---- */

typedef struct {
    uint32_t W, H, cpt;
    uint32_t *used; /* cores on each tile */
} sm__mesh_use_t;

/* Greedy: cores in breadth-first order of the graph from the heaviest one; each goes to the free tile that
 * minimises its packets x hops to the cores already placed, among the 48 free tiles nearest to their weighted
 * centre. */
static void sm__place_greedy(const sm__cgraph_t *g, sm__mesh_use_t *mu, uint32_t *tile)
{
    uint32_t n = g->n, W = mu->W, H = mu->H, T = W * H;
    uint32_t *order = malloc(((size_t)n + 1) * sizeof *order), *cand = malloc(64 * sizeof *cand);
    uint8_t *seen = calloc((size_t)n + 1, 1), *placed = calloc((size_t)n + 1, 1);
    uint32_t head = 0, no = 0;
    for (uint32_t start = 0; start < n; start++) { /* every component, heaviest first within the BFS */
        if (seen[start])
            continue;
        seen[start] = 1;
        order[no++] = start;
        while (head < no) {
            uint32_t a = order[head++];
            for (uint64_t k = g->ptr[a]; k < g->ptr[a + 1]; k++)
                if (!seen[g->adj[k]]) {
                    seen[g->adj[k]] = 1;
                    order[no++] = g->adj[k];
                }
        }
    }
    for (uint32_t q = 0; q < n; q++) {
        uint32_t a = order[q];
        double sx = 0, sy = 0, sw = 0;
        for (uint64_t k = g->ptr[a]; k < g->ptr[a + 1]; k++)
            if (placed[g->adj[k]]) {
                uint32_t t = tile[g->adj[k]];
                sx += g->w[k] * (double)(t % W);
                sy += g->w[k] * (double)(t / W);
                sw += g->w[k];
            }
        int cx = sw > 0 ? (int)lround(sx / sw) : (int)(W / 2), cy = sw > 0 ? (int)lround(sy / sw) : (int)(H / 2);
        /* spiral out from the centre (rings of Manhattan radius r) collecting free tiles */
        uint32_t nc = 0;
        for (int r = 0; nc < 48 && r < (int)(W + H); r++) {
            for (int dx = -r; dx <= r && nc < 48; dx++) {
                int dys[2] = {r - abs(dx), -(r - abs(dx))};
                for (int s = 0; s < (dys[0] == 0 ? 1 : 2) && nc < 48; s++) {
                    int x = cx + dx, y = cy + dys[s];
                    if (x < 0 || y < 0 || x >= (int)W || y >= (int)H)
                        continue;
                    uint32_t t = (uint32_t)y * W + (uint32_t)x;
                    if (mu->used[t] < mu->cpt)
                        cand[nc++] = t;
                }
            }
        }
        uint32_t best = cand[0];
        double bc = INFINITY;
        for (uint32_t k = 0; k < nc; k++) {
            double c = 0; /* packets x hops to the neighbours already placed */
            for (uint64_t e = g->ptr[a]; e < g->ptr[a + 1]; e++)
                if (placed[g->adj[e]])
                    c += (double)g->w[e] * sm__hops(W, cand[k], tile[g->adj[e]]);
            if (c < bc) {
                bc = c;
                best = cand[k];
            }
        }
        tile[a] = best;
        mu->used[best]++;
        placed[a] = 1;
        (void)T;
    }
    free(order);
    free(cand);
    free(seen);
    free(placed);
}

/* Recursive bisection: the cores of a region of tiles are split in two with METIS in proportion to the two
 * halves of the region (cut along its longer side), and so on down to single tiles. */
static int sm__bisect(const sm__cgraph_t *g, const uint32_t *cores, uint32_t nc, uint32_t x0, uint32_t y0,
                      uint32_t x1, uint32_t y1, const sm__mesh_use_t *mu, uint32_t *tile, uint32_t *loc)
{
    uint32_t w = x1 - x0, h = y1 - y0;
    if (nc == 0)
        return 0;
    if (w * h == 1) {
        for (uint32_t k = 0; k < nc; k++)
            tile[cores[k]] = y0 * mu->W + x0;
        return 0;
    }
    uint32_t xm = x0, ym = y0, cap1, cap2;
    if (w >= h) {
        xm = x0 + w / 2;
        cap1 = (xm - x0) * h * mu->cpt;
        cap2 = (x1 - xm) * h * mu->cpt;
    } else {
        ym = y0 + h / 2;
        cap1 = w * (ym - y0) * mu->cpt;
        cap2 = w * (y1 - ym) * mu->cpt;
    }
    /* cores for the first half: in proportion to capacity, within both capacities */
    uint32_t n1 = (uint32_t)llround((double)nc * cap1 / (double)(cap1 + cap2));
    if (n1 > cap1)
        n1 = cap1;
    if (nc - n1 > cap2)
        n1 = nc - cap2;
    uint8_t *side = calloc(nc, 1);
    if (!side)
        return SM_ENOMEM;
    if (n1 > 0 && n1 < nc) {
        /* the induced subgraph, in METIS's CSR form */
        for (uint32_t k = 0; k < nc; k++)
            loc[cores[k]] = k;
        uint64_t m = 0;
        for (uint32_t k = 0; k < nc; k++)
            for (uint64_t e = g->ptr[cores[k]]; e < g->ptr[cores[k] + 1]; e++)
                m += loc[g->adj[e]] != UINT32_MAX;
        idx_t *xadj = malloc(((size_t)nc + 1) * sizeof *xadj), *adj = malloc((m + 1) * sizeof *adj);
        idx_t *wgt = malloc((m + 1) * sizeof *wgt), *part = malloc((size_t)nc * sizeof *part);
        int rc = 0;
        if (!xadj || !adj || !wgt || !part || m > INT32_MAX) {
            rc = SM_ENOMEM;
        } else {
            m = 0;
            xadj[0] = 0;
            for (uint32_t k = 0; k < nc; k++) {
                for (uint64_t e = g->ptr[cores[k]]; e < g->ptr[cores[k] + 1]; e++)
                    if (loc[g->adj[e]] != UINT32_MAX) {
                        adj[m] = (idx_t)loc[g->adj[e]];
                        wgt[m++] = (idx_t)(g->w[e] > 1000000 ? 1000000 : g->w[e]);
                    }
                xadj[k + 1] = (idx_t)m;
            }
            idx_t nv = (idx_t)nc, ncon = 1, nparts = 2, objval = 0, opts[METIS_NOPTIONS];
            real_t tp[2] = {(real_t)n1 / (real_t)nc, (real_t)(nc - n1) / (real_t)nc}, ub = 1.001f;
            METIS_SetDefaultOptions(opts);
            opts[METIS_OPTION_SEED] = 1; /* the same partition every run */
            if (m == 0 || METIS_PartGraphRecursive(&nv, &ncon, xadj, adj, NULL, NULL, wgt, &nparts, tp, &ub, opts,
                                                   &objval, part) != METIS_OK) {
                for (uint32_t k = 0; k < nc; k++) /* no edges (or no partition): in order */
                    part[k] = k < n1 ? 0 : 1;
            }
            /* exact sizes: move cores from the fuller side to the other (the last ones first) */
            uint32_t c1 = 0;
            for (uint32_t k = 0; k < nc; k++)
                c1 += part[k] == 0;
            for (uint32_t k = nc; k-- > 0 && c1 > n1;)
                if (part[k] == 0) {
                    part[k] = 1;
                    c1--;
                }
            for (uint32_t k = nc; k-- > 0 && c1 < n1;)
                if (part[k] == 1) {
                    part[k] = 0;
                    c1++;
                }
            for (uint32_t k = 0; k < nc; k++)
                side[k] = (uint8_t)part[k];
        }
        for (uint32_t k = 0; k < nc; k++)
            loc[cores[k]] = UINT32_MAX;
        free(xadj);
        free(adj);
        free(wgt);
        free(part);
        if (rc) {
            free(side);
            return rc;
        }
    } else {
        for (uint32_t k = 0; k < nc; k++)
            side[k] = n1 == 0;
    }
    uint32_t *a = malloc(((size_t)nc + 1) * sizeof *a), na = 0, nb = 0;
    if (!a) {
        free(side);
        return SM_ENOMEM;
    }
    for (uint32_t k = 0; k < nc; k++)
        if (!side[k])
            a[na++] = cores[k];
    for (uint32_t k = 0; k < nc; k++)
        if (side[k])
            a[na + nb++] = cores[k];
    free(side);
    int rc = w >= h ? sm__bisect(g, a, na, x0, y0, xm, y1, mu, tile, loc)
                    : sm__bisect(g, a, na, x0, y0, x1, ym, mu, tile, loc);
    if (rc == 0)
        rc = w >= h ? sm__bisect(g, a + na, nb, xm, y0, x1, y1, mu, tile, loc)
                    : sm__bisect(g, a + na, nb, x0, ym, x1, y1, mu, tile, loc);
    free(a);
    return rc;
}

/* Local refinement: move a core to a neighbouring tile with a free slot, or swap it with a core there, when
 * that lowers the packets x hops; passes until nothing improves or the work budget runs out. */
static void sm__refine(const sm__cgraph_t *g, sm__mesh_use_t *mu, uint32_t *tile)
{
    uint32_t n = g->n, W = mu->W, H = mu->H;
    /* cores on each tile */
    uint32_t *on = malloc(((size_t)W * H * mu->cpt + 1) * sizeof *on);
    if (!on)
        return;
    memset(on, 0xff, (size_t)W * H * mu->cpt * sizeof *on);
    for (uint32_t a = 0; a < n; a++) {
        uint32_t t = tile[a], s = 0;
        while (on[(size_t)t * mu->cpt + s] != UINT32_MAX)
            s++;
        on[(size_t)t * mu->cpt + s] = a;
    }
    double budget = 4e8; /* edge visits */
    for (int pass = 0; pass < 8 && budget > 0; pass++) {
        int improved = 0;
        for (uint32_t a = 0; a < n && budget > 0; a++) {
            uint32_t ta = tile[a];
            double ca = sm__cost_at(g, tile, W, a, ta);
            budget -= (double)(g->ptr[a + 1] - g->ptr[a]);
            for (int dd = 0; dd < 4; dd++) {
                uint32_t x = ta % W, y = ta / W;
                if ((dd == 0 && x + 1 >= W) || (dd == 1 && y + 1 >= H) || (dd == 2 && x == 0) || (dd == 3 && y == 0))
                    continue;
                uint32_t tb = dd == 0 ? ta + 1 : dd == 1 ? ta + W : dd == 2 ? ta - 1 : ta - W;
                double ca_b = sm__cost_at(g, tile, W, a, tb);
                budget -= (double)(g->ptr[a + 1] - g->ptr[a]);
                for (uint32_t s = 0; s < mu->cpt; s++) {
                    uint32_t b = on[(size_t)tb * mu->cpt + s];
                    double delta;
                    if (b == UINT32_MAX) {
                        delta = ca_b - ca; /* move into a free slot */
                    } else {
                        double cb = sm__cost_at(g, tile, W, b, tb), cb_a = sm__cost_at(g, tile, W, b, ta);
                        budget -= 2.0 * (double)(g->ptr[b + 1] - g->ptr[b]);
                        /* the a-b link counts in both sums with a's old place; after a swap its hops are unchanged */
                        double wab = 0;
                        for (uint64_t k = g->ptr[a]; k < g->ptr[a + 1]; k++)
                            if (g->adj[k] == b)
                                wab = g->w[k];
                        uint32_t hab = sm__hops(W, ta, tb);
                        delta = (ca_b - wab * hab) + (cb_a - wab * hab) - ca - cb + 2 * wab * hab;
                    }
                    if (delta < -1e-9) {
                        uint32_t sa = 0;
                        while (on[(size_t)ta * mu->cpt + sa] != a)
                            sa++;
                        on[(size_t)ta * mu->cpt + sa] = b;
                        on[(size_t)tb * mu->cpt + s] = a;
                        tile[a] = tb;
                        if (b != UINT32_MAX)
                            tile[b] = ta;
                        else {
                            mu->used[ta]--;
                            mu->used[tb]++;
                        }
                        improved = 1;
                        break;
                    }
                }
                if (tile[a] != ta)
                    break;
            }
        }
        if (!improved)
            break;
    }
    free(on);
}

int sm__place(sm_deploy_t *d, sm_placer_t placer, double *est_before, double *est_after, sm_errbuf_t *eb)
{
    const sm_chip_t *chip = &d->chip;
    uint32_t n = d->ncores, W = chip->width, H = chip->height, T = W * H;
    sm__cgraph_t g;
    int rc = 0;
    if (placer == SM_PLACE_ORDER && !est_before) {
        for (uint32_t c = 0; c < n; c++) {
            d->cores[c].tile = c / chip->cores_per_tile;
            d->cores[c].slot = c % chip->cores_per_tile;
        }
        return 0;
    }
    if (sm__cgraph_build(d, &g) != 0)
        return sm_errorf(eb, SM_ENOMEM, "out of memory for the core graph of %u cores", n);
    uint32_t *tile = malloc(((size_t)n + 1) * sizeof *tile), *loc = malloc(((size_t)n + 1) * sizeof *loc);
    uint32_t *cores = malloc(((size_t)n + 1) * sizeof *cores);
    sm__mesh_use_t mu = {W, H, chip->cores_per_tile, calloc(T, sizeof(uint32_t))};
    if (!tile || !loc || !cores || !mu.used) {
        rc = sm_errorf(eb, SM_ENOMEM, "out of memory placing %u cores", n);
        goto out;
    }
    for (uint32_t c = 0; c < n; c++)
        tile[c] = c / chip->cores_per_tile; /* in order */
    if (est_before)
        *est_before = sm__cost(&g, tile, W);
    if (placer == SM_PLACE_GREEDY) {
        memset(mu.used, 0, T * sizeof *mu.used);
        sm__place_greedy(&g, &mu, tile);
    } else if (placer == SM_PLACE_BISECT) {
        /* the smallest block of whole rows (or the squarest rectangle) from the corner that holds every core */
        uint32_t tiles_needed = (n + chip->cores_per_tile - 1) / chip->cores_per_tile, bw = W, bh = H;
        for (uint32_t s = 1; s <= (W > H ? W : H); s++) {
            uint32_t w = s < W ? s : W, h = (tiles_needed + w - 1) / w;
            if (h <= H && h <= w + 1) {
                bw = w;
                bh = h;
                break;
            }
        }
        for (uint32_t c = 0; c < n; c++) {
            cores[c] = c;
            loc[c] = UINT32_MAX;
        }
        rc = sm__bisect(&g, cores, n, 0, 0, bw, bh, &mu, tile, loc);
        if (rc) {
            rc = sm_errorf(eb, rc, "out of memory placing %u cores", n);
            goto out;
        }
        for (uint32_t c = 0; c < n; c++)
            mu.used[tile[c]]++;
    } else {
        for (uint32_t c = 0; c < n; c++)
            mu.used[tile[c]]++;
    }
    if (placer != SM_PLACE_ORDER)
        sm__refine(&g, &mu, &tile[0]);
    if (est_after)
        *est_after = sm__cost(&g, tile, W);
    /* slots in core order within each tile */
    memset(mu.used, 0, T * sizeof *mu.used);
    for (uint32_t c = 0; c < n; c++) {
        d->cores[c].tile = tile[c];
        d->cores[c].slot = mu.used[tile[c]]++;
        if (d->cores[c].slot >= chip->cores_per_tile) {
            rc = sm_errorf(eb, SM_EINVAL, "placement put more than %u cores on tile %u", chip->cores_per_tile,
                           tile[c]);
            goto out;
        }
    }
out:
    sm__cgraph_free(&g);
    free(tile);
    free(loc);
    free(cores);
    free(mu.used);
    return rc;
}

/* ---- the placement file ---- */

void sm_placement_free(sm_placement_t *p)
{
    free(p->first);
    free(p->count);
    free(p->tile);
    free(p->slot);
    memset(p, 0, sizeof *p);
}

int sm_placement_write(const sm_deploy_t *d, const char *path, sm_errbuf_t *eb)
{
    if (d->seed > (uint64_t)INT64_MAX) /* JSON integers are signed 64-bit: a larger seed would read back negative */
        return sm_errorf(eb, SM_ERANGE, "%s: cannot write seed %llu: placement files hold seeds below 2^63", path,
                         (unsigned long long)d->seed);
    json_t *cores = json_array();
    for (uint32_t c = 0; c < d->ncores; c++) {
        const sm_core_t *co = &d->cores[c];
        json_array_append_new(cores, json_pack("[I,I,I,I,I]", (json_int_t)co->first, (json_int_t)co->count,
                                               (json_int_t)(co->tile % d->chip.width),
                                               (json_int_t)(co->tile / d->chip.width), (json_int_t)co->slot));
    }
    json_t *o = json_pack("{s:s,s:i,s:s,s:I,s:I,s:{s:s,s:I,s:I,s:I},s:s,s:o}", "format", "spikemesh-placement",
                          "version", 1, "network", d->net->name, "neurons", (json_int_t)d->n, "seed",
                          (json_int_t)d->seed, "chip", "name", d->chip.name, "width", (json_int_t)d->chip.width,
                          "height", (json_int_t)d->chip.height, "cores_per_tile", (json_int_t)d->chip.cores_per_tile,
                          "placer", sm_placer_name(d->placer), "cores", cores);
    if (!o)
        return sm_errorf(eb, SM_ENOMEM, "out of memory writing %s", path);
    size_t n = strlen(path) + 6;
    char *tmp = malloc(n);
    int rc = 0;
    if (!tmp) {
        json_decref(o);
        return sm_errorf(eb, SM_ENOMEM, "out of memory");
    }
    snprintf(tmp, n, "%s.part", path);
    errno = 0;
    if (json_dump_file(o, tmp, JSON_INDENT(1) | JSON_PRESERVE_ORDER) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        rc = sm_errorf(eb, SM_EIO, "%s: cannot write the placement: %s", path, e ? strerror(e) : "write error");
    }
    free(tmp);
    json_decref(o);
    return rc;
}

/* Every field is type-checked and an unknown one refused (docs/placement-format.md). `format`, `chip` and `cores`
 * are required; `version` must be 1 when given; `neurons`, when given, must be what the cores cover; `network`,
 * `seed`, `placer` and `chip.name` record how the placement was made and are checked for type (and for `placer`,
 * its name) only. */
int sm_placement_load(const char *path, sm_placement_t *p, sm_errbuf_t *eb)
{
    static const char *const keys[] = {"format", "version", "network", "neurons", "seed", "chip", "placer",
                                       "cores", NULL};
    static const char *const chip_keys[] = {"name", "width", "height", "cores_per_tile", NULL};
    char *text;
    size_t len;
    json_t *root = NULL;
    memset(p, 0, sizeof *p);
    int rc = sm__read_file(path, &text, &len, eb);
    if (rc)
        return rc;
    sm__jctx_t cx = {.file = path, .text = text, .len = len, .eb = eb};
    const char *fmt, *str;
    uint64_t v, neurons = 0;
    if ((rc = sm__json_parse(&cx, &root)) != 0 || (rc = sm__jcheck_keys(&cx, root, keys)) != 0 ||
        (rc = sm__jget_str(&cx, root, "format", 1, NULL, &fmt)) != 0)
        goto out;
    if (strcmp(fmt, "spikemesh-placement") != 0) {
        sm__jpush_key(&cx, "format");
        rc = sm__jerr(&cx, SM_EPARSE, "not a placement file (format \"%.40s\")", fmt);
        goto out;
    }
    if ((rc = sm__jget_uint(&cx, root, "version", 0, 1, 0, UINT64_MAX, &v)) != 0)
        goto out;
    if (v != 1) {
        sm__jpush_key(&cx, "version");
        rc = sm__jerr(&cx, SM_EPARSE, "unsupported version %llu (this spikemesh reads version 1)",
                      (unsigned long long)v);
        goto out;
    }
    if ((rc = sm__jget_str(&cx, root, "network", 0, "", &str)) != 0 ||
        (rc = sm__jget_uint(&cx, root, "neurons", 0, 0, 1, UINT32_MAX, &neurons)) != 0 ||
        (rc = sm__jget_uint(&cx, root, "seed", 0, 0, 0, (uint64_t)INT64_MAX, &v)) != 0 ||
        (rc = sm__jget_str(&cx, root, "placer", 0, "order", &str)) != 0)
        goto out;
    sm_placer_t placer;
    if (sm_placer_parse(str, &placer) != 0) {
        sm__jpush_key(&cx, "placer");
        rc = sm__jerr(&cx, SM_EPARSE, "unknown placer \"%.40s\" (known: order, greedy, bisect)", str);
        goto out;
    }
    p->placer = placer;
    json_t *chip = json_object_get(root, "chip");
    if (!chip) {
        rc = sm__jerr(&cx, SM_EPARSE, "missing required field \"chip\"");
        goto out;
    }
    sm__jpush_key(&cx, "chip");
    if (!json_is_object(chip)) {
        rc = sm__jerr(&cx, SM_EPARSE, "must be an object {name, width, height, cores_per_tile}, not %s",
                      sm__jtype(chip));
        goto out;
    }
    const char *cname;
    if ((rc = sm__jcheck_keys(&cx, chip, chip_keys)) != 0 || (rc = sm__jget_str(&cx, chip, "name", 1, NULL, &cname)) != 0 ||
        (rc = sm__jget_uint(&cx, chip, "width", 1, 0, 1, 4096, &v)) != 0)
        goto out;
    snprintf(p->chip, sizeof p->chip, "%s", cname);
    p->width = (uint32_t)v;
    if ((rc = sm__jget_uint(&cx, chip, "height", 1, 0, 1, 4096, &v)) != 0)
        goto out;
    p->height = (uint32_t)v;
    if ((rc = sm__jget_uint(&cx, chip, "cores_per_tile", 1, 0, 1, SM_TILE_MAX_CORES, &v)) != 0)
        goto out;
    p->cores_per_tile = (uint32_t)v;
    sm__jpop(&cx);
    json_t *cores = json_object_get(root, "cores");
    if (!cores) {
        rc = sm__jerr(&cx, SM_EPARSE, "missing required field \"cores\"");
        goto out;
    }
    if (!json_is_array(cores) || json_array_size(cores) == 0 || json_array_size(cores) > (1u << 24)) {
        sm__jpush_key(&cx, "cores");
        rc = sm__jerr(&cx, SM_EPARSE, "must be a non-empty array of [first_neuron, neurons, x, y, slot]");
        goto out;
    }
    size_t nc = json_array_size(cores);
    p->first = malloc(nc * sizeof *p->first);
    p->count = malloc(nc * sizeof *p->count);
    p->tile = malloc(nc * sizeof *p->tile);
    p->slot = malloc(nc * sizeof *p->slot);
    if (!p->first || !p->count || !p->tile || !p->slot) {
        rc = sm_errorf(eb, SM_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    sm__jpush_key(&cx, "cores");
    uint64_t next = 0; /* the cores cover the neurons in order, without gaps */
    for (size_t k = 0; k < nc; k++) {
        json_t *e = json_array_get(cores, k);
        json_int_t f[5];
        int ok = json_is_array(e) && json_array_size(e) == 5;
        for (int j = 0; ok && j < 5; j++) {
            ok = json_is_integer(json_array_get(e, (size_t)j)) && json_integer_value(json_array_get(e, (size_t)j)) >= 0 &&
                 json_integer_value(json_array_get(e, (size_t)j)) <= UINT32_MAX;
            f[j] = ok ? json_integer_value(json_array_get(e, (size_t)j)) : 0;
        }
        if (ok && (f[2] >= p->width || f[3] >= p->height || f[4] >= p->cores_per_tile || f[1] == 0))
            ok = 0;
        sm__jpush_idx(&cx, k);
        if (!ok) {
            rc = sm__jerr(&cx, SM_EPARSE,
                          "each core is [first_neuron, neurons >= 1, x < %u, y < %u, slot < %u] in whole numbers",
                          p->width, p->height, p->cores_per_tile);
            goto out;
        }
        if ((uint64_t)f[0] != next) {
            rc = sm__jerr(&cx, SM_EPARSE,
                          "starts at neuron %llu, but the next core must start at neuron %llu (the cores cover the "
                          "neurons in order, without gaps)", (unsigned long long)f[0], (unsigned long long)next);
            goto out;
        }
        if (next + (uint64_t)f[1] > UINT32_MAX) {
            rc = sm__jerr(&cx, SM_ERANGE, "covers neurons %llu..%llu, beyond the %u neurons a network can have",
                          (unsigned long long)f[0], (unsigned long long)(next + (uint64_t)f[1] - 1), UINT32_MAX);
            goto out;
        }
        sm__jpop(&cx);
        next += (uint64_t)f[1];
        p->first[k] = (uint32_t)f[0];
        p->count[k] = (uint32_t)f[1];
        p->tile[k] = (uint32_t)(f[3] * p->width + f[2]);
        p->slot[k] = (uint32_t)f[4];
    }
    sm__jpop(&cx);
    if (neurons && next != neurons) {
        sm__jpush_key(&cx, "neurons");
        rc = sm__jerr(&cx, SM_EPARSE, "%llu, but the cores cover %llu neurons (it must be their total, the network's "
                      "neuron count)", (unsigned long long)neurons, (unsigned long long)next);
        goto out;
    }
    p->ncores = (uint32_t)nc;
out:
    json_decref(root);
    free(text);
    if (rc)
        sm_placement_free(p);
    return rc;
}

/* Uses a placement read from a file: it must cover the network's neurons in order, fit the chip it is used on,
 * put one core per slot and respect every per-core limit (recounted here). */
int sm__placement_apply(const sm_net_t *net, const sm_chip_t *chip, const sm_placement_t *pl, sm_deploy_t *d,
                        sm_errbuf_t *eb)
{
    if (pl->width != chip->width || pl->height != chip->height || pl->cores_per_tile != chip->cores_per_tile)
        return sm_errorf(eb, SM_EINVAL,
                         "the placement is for a %ux%u mesh of %u cores per tile (chip '%s'), not chip '%s' "
                         "(%ux%u x %u)", pl->width, pl->height, pl->cores_per_tile, pl->chip, chip->name,
                         chip->width, chip->height, chip->cores_per_tile);
    uint32_t next = 0, T = chip->width * chip->height;
    uint8_t *taken = calloc((size_t)T * chip->cores_per_tile, 1);
    d->cores = calloc(pl->ncores, sizeof *d->cores);
    if (!taken || !d->cores) {
        free(taken);
        return sm_errorf(eb, SM_ENOMEM, "out of memory");
    }
    for (uint32_t c = 0; c < pl->ncores; c++) {
        if (pl->first[c] != next) {
            free(taken);
            return sm_errorf(eb, SM_EINVAL, "placement core %u starts at neuron %u, but the next core must start at "
                             "neuron %u", c, pl->first[c], next);
        }
        if ((uint64_t)pl->first[c] + pl->count[c] > net->n) {
            free(taken);
            return sm_errorf(eb, SM_EINVAL,
                             "placement core %u covers neurons %u..%llu, but network '%s' has %u neurons (the "
                             "placement was made for another network)", c, pl->first[c],
                             (unsigned long long)pl->first[c] + pl->count[c] - 1, net->name, net->n);
        }
        uint32_t phys = pl->tile[c] * chip->cores_per_tile + pl->slot[c];
        if (taken[phys]) {
            free(taken);
            return sm_errorf(eb, SM_EINVAL, "placement core %u shares tile (%u,%u) slot %u with another core", c,
                             pl->tile[c] % chip->width, pl->tile[c] / chip->width, pl->slot[c]);
        }
        taken[phys] = 1;
        d->cores[c].first = pl->first[c];
        d->cores[c].count = pl->count[c];
        d->cores[c].tile = pl->tile[c];
        d->cores[c].slot = pl->slot[c];
        next += pl->count[c];
    }
    free(taken);
    d->ncores = pl->ncores;
    if (next != net->n)
        return sm_errorf(eb, SM_EINVAL, "the placement covers %u neurons, but network '%s' has %u (the placement "
                         "was made for another network)", next, net->name, net->n);
    /* recount every core's synapses, fan-in and fan-out, and check the limits */
    uint32_t *core_of = malloc(((size_t)net->n + 1) * sizeof *core_of);
    if (!core_of)
        return sm_errorf(eb, SM_ENOMEM, "out of memory");
    for (uint32_t c = 0; c < d->ncores; c++)
        for (uint32_t i = d->cores[c].first; i < d->cores[c].first + d->cores[c].count; i++)
            core_of[i] = c;
    for (uint32_t i = 0; i < net->n; i++) {
        uint32_t last = UINT32_MAX, a = core_of[i];
        for (uint64_t s = d->row[i]; s < d->row[i + 1]; s++) {
            uint32_t b = core_of[SM_SYN_POST(d->syn[s].tgt)];
            d->cores[b].synapses++;
            if (b != last) {
                d->cores[b].fan_in++;
                d->cores[a].fan_out++;
                last = b;
            }
        }
    }
    free(core_of);
    for (uint32_t c = 0; c < d->ncores; c++) {
        sm_core_t *co = &d->cores[c];
        co->syn_bytes = co->synapses * chip->synapse_bytes;
        const char *what = co->count > chip->max_neurons ? "neurons"
                           : co->syn_bytes > chip->synapse_memory ? "synapse memory (bytes)"
                           : co->fan_in > chip->max_fan_in        ? "fan-in"
                           : co->fan_out > chip->max_fan_out      ? "fan-out"
                                                                  : NULL;
        if (what)
            return sm_errorf(eb, SM_ENOFIT,
                             "placement core %u breaks the chip's %s limit: %u neurons, %llu bytes, fan-in %u, "
                             "fan-out %u against %u, %llu, %u, %u", c, what, co->count,
                             (unsigned long long)co->syn_bytes, co->fan_in, co->fan_out, chip->max_neurons,
                             (unsigned long long)chip->synapse_memory, chip->max_fan_in, chip->max_fan_out);
    }
    return 0;
}
