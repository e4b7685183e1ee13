/* loader/deploy.c: builds a deployment from a network and a chip: connectivity (a pure function of the seed),
 * partitioning onto cores in order under every per-core limit, routing keys and multicast routing tables. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spikemesh/loader.h"

void sm_deploy_drop_synapses(sm_deploy_t *d)
{
    if (!d)
        return;
    free(d->row);
    free(d->syn);
    d->row = NULL;
    d->syn = NULL;
}

void sm_deploy_free(sm_deploy_t *d)
{
    if (!d)
        return;
    free(d->row);
    free(d->syn);
    free(d->cores);
    free(d->pieces);
    free(d->piece_of);
    free(d->trees);
    free(d->tree_off);
    sm_mesh_free(&d->mesh);
    memset(d, 0, sizeof *d);
}

/* ---- connectivity ---- */

typedef struct {
    sm_syn_t *syn;
    uint64_t n, cap;
} sm__synbuf_t;

static int sm__push(sm__synbuf_t *b, uint32_t tgt, float w)
{
    if (b->n == b->cap) {
        uint64_t nc = b->cap ? b->cap + b->cap / 2 : 1024;
        sm_syn_t *ns = realloc(b->syn, nc * sizeof *ns);
        if (!ns)
            return SM_ENOMEM;
        b->syn = ns;
        b->cap = nc;
    }
    b->syn[b->n].tgt = tgt;
    b->syn[b->n].w = w;
    b->n++;
    return 0;
}

/* Uniform numbers in (0, 1] for one (projection, presynaptic neuron) stream. */
typedef struct {
    uint64_t seed;
    uint32_t a, b, ctr, left;
    uint32_t w[4];
} sm__ustream_t;

static double sm__unext(sm__ustream_t *s)
{
    if (s->left == 0) {
        sm_philox(s->seed, SM_STREAM_CONNECT, s->a, s->b, s->ctr++, s->w);
        s->left = 2;
    }
    s->left--;
    return 1.0 - sm_u01(s->w[2 * s->left], s->w[2 * s->left + 1]);
}

/* Bernoulli(p) targets among post neurons [lo, hi) (local indices), in increasing order, by geometric skipping
 * on the stream us; `skip` is left out (autapses), the rest pushed as synapses. */
static int sm__gen_range(sm__ustream_t *us, uint32_t lo, uint32_t hi, double p, uint32_t skip, uint32_t base,
                         uint32_t delay, uint8_t inh, float w, sm__synbuf_t *b)
{
    int rc = 0;
    if (p <= 0.0 || lo >= hi)
        return 0;
    if (p >= 1.0) {
        for (uint32_t j = lo; j < hi && rc == 0; j++)
            if (j != skip)
                rc = sm__push(b, SM_SYN_PACK(base + j, delay, inh), w);
        return rc;
    }
    double l1p = log1p(-p), j = (double)lo - 1.0;
    for (;;) {
        j += floor(log(sm__unext(us)) / l1p) + 1.0;
        if (j >= (double)hi)
            break;
        uint32_t jj = (uint32_t)j;
        if (jj == skip)
            continue;
        if ((rc = sm__push(b, SM_SYN_PACK(base + jj, delay, inh), w)) != 0)
            break;
    }
    return rc;
}

static int sm__gen_row(const sm_net_t *net, uint32_t k, uint32_t i, uint64_t seed, const uint32_t *list_ptr,
                       const uint32_t *list_idx, sm__synbuf_t *b)
{
    const sm_proj_t *pr = &net->projs[k];
    const sm_pop_t *post = &net->pops[pr->post];
    int same = pr->pre == pr->post, rc = 0;
    uint32_t base = post->first;
    float w = (float)pr->weight;
#define SM__TGT(j) SM_SYN_PACK(base + (j), pr->delay_steps, pr->inhibitory)
    switch (pr->rule) {
    case SM_CONN_BERNOULLI: {
        sm__ustream_t us = {.seed = seed, .a = k, .b = i};
        rc = sm__gen_range(&us, 0, post->size, pr->p, same && !pr->autapses ? i : UINT32_MAX, base,
                           pr->delay_steps, pr->inhibitory, w, b);
        break;
    }
    case SM_CONN_BLOCKS: {
        /* post ranges in increasing order, each with its probability: own block, next block, the rest */
        uint32_t B = pr->blocks, npre = net->pops[pr->pre].size, np = post->size;
        uint32_t blk = (uint32_t)((uint64_t)i * B / npre), nxt = (blk + 1) % B;
        uint32_t lo_own = (uint32_t)((uint64_t)blk * np / B), hi_own = (uint32_t)((uint64_t)(blk + 1) * np / B);
        uint32_t lo_nxt = (uint32_t)((uint64_t)nxt * np / B), hi_nxt = (uint32_t)((uint64_t)(nxt + 1) * np / B);
        sm__ustream_t us = {.seed = seed, .a = k, .b = i};
        uint32_t skip = same && !pr->autapses ? i : UINT32_MAX;
        /* walk [0, np) in order: every point belongs to own, next or other */
        uint32_t pos = 0;
        while (pos < np && rc == 0) {
            uint32_t end;
            double pp;
            if (pos >= lo_own && pos < hi_own) {
                end = hi_own;
                pp = pr->p;
            } else if (B > 1 && pos >= lo_nxt && pos < hi_nxt) {
                end = hi_nxt;
                pp = pr->p_next;
            } else {
                end = np;
                if (lo_own > pos && lo_own < end)
                    end = lo_own;
                if (B > 1 && lo_nxt > pos && lo_nxt < end)
                    end = lo_nxt;
                pp = pr->p_out;
            }
            rc = sm__gen_range(&us, pos, end, pp, skip, base, pr->delay_steps, pr->inhibitory, w, b);
            pos = end;
        }
        break;
    }
    case SM_CONN_ALL:
        for (uint32_t j = 0; j < post->size && rc == 0; j++)
            if (!same || pr->autapses || j != i)
                rc = sm__push(b, SM__TGT(j), w);
        break;
    case SM_CONN_ONE:
        if (!same || pr->autapses)
            rc = sm__push(b, SM__TGT(i), w);
        break;
    case SM_CONN_LIST:
        for (uint32_t q = list_ptr[i]; q < list_ptr[i + 1] && rc == 0; q++) {
            uint32_t e = list_idx[q];
            rc = sm__push(b, SM__TGT(pr->pairs[2 * e + 1]), pr->weights ? pr->weights[e] : w);
        }
        break;
    }
#undef SM__TGT
    return rc;
}

static int sm__syn_cmp(const void *pa, const void *pb)
{
    const sm_syn_t *a = pa, *b = pb;
    uint32_t pa_ = SM_SYN_POST(a->tgt), pb_ = SM_SYN_POST(b->tgt);
    if (pa_ != pb_)
        return pa_ < pb_ ? -1 : 1;
    if (a->tgt != b->tgt)
        return a->tgt < b->tgt ? -1 : 1;
    uint32_t wa, wb;
    memcpy(&wa, &a->w, 4);
    memcpy(&wb, &b->w, 4);
    return wa < wb ? -1 : wa > wb;
}

/* Orders a row by postsynaptic neuron (then by the whole word and weight bits, a total order). */
static void sm__sort_row(sm_syn_t *s, uint64_t n)
{
    for (uint64_t i = 1; i < n; i++)
        if (sm__syn_cmp(&s[i - 1], &s[i]) > 0) {
            qsort(s, n, sizeof *s, sm__syn_cmp);
            return;
        }
}

static double sm__expected_synapses(const sm_net_t *net)
{
    double e = 0;
    for (uint32_t k = 0; k < net->nprojs; k++) {
        const sm_proj_t *pr = &net->projs[k];
        double a = net->pops[pr->pre].size, b = net->pops[pr->post].size;
        switch (pr->rule) {
        case SM_CONN_BERNOULLI:
            e += pr->p * a * b;
            break;
        case SM_CONN_ALL:
            e += a * b;
            break;
        case SM_CONN_ONE:
            e += a;
            break;
        case SM_CONN_LIST:
            e += (double)pr->npairs;
            break;
        case SM_CONN_BLOCKS: {
            double blk = b / pr->blocks;
            e += a * (pr->p * blk + (pr->blocks > 1 ? pr->p_next * blk : 0) +
                      pr->p_out * (b - blk * (pr->blocks > 1 ? 2 : 1)));
            break;
        }
        }
    }
    return e;
}

/* Generates the synapses; est is sm__expected_synapses(net). */
static int sm__connect(const sm_net_t *net, double est, uint64_t seed, sm_deploy_t *d, sm_errbuf_t *eb)
{
    double phys = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (est * 12.0 > phys && phys > 0)
        return sm_errorf(eb, SM_ENOMEM,
                         "network '%s' has about %.3g synapses, which need %.1f GiB; this machine has %.1f GiB",
                         net->name, est, est * 12.0 / 1073741824.0, phys / 1073741824.0);
    /* Lists: bucket each list projection's pairs by presynaptic neuron. */
    uint32_t **lptr = calloc(net->nprojs ? net->nprojs : 1, sizeof *lptr);
    uint32_t **lidx = calloc(net->nprojs ? net->nprojs : 1, sizeof *lidx);
    sm__synbuf_t b = {0};
    int rc = 0;
    if (!lptr || !lidx)
        rc = SM_ENOMEM;
    for (uint32_t k = 0; k < net->nprojs && rc == 0; k++) {
        const sm_proj_t *pr = &net->projs[k];
        if (pr->rule != SM_CONN_LIST)
            continue;
        if (pr->npairs > UINT32_MAX - 1) {
            rc = SM_ERANGE;
            break;
        }
        uint32_t npre = net->pops[pr->pre].size;
        lptr[k] = calloc((size_t)npre + 1, sizeof **lptr);
        lidx[k] = malloc((pr->npairs ? pr->npairs : 1) * sizeof **lidx);
        if (!lptr[k] || !lidx[k]) {
            rc = SM_ENOMEM;
            break;
        }
        for (uint64_t e = 0; e < pr->npairs; e++)
            lptr[k][pr->pairs[2 * e] + 1]++;
        for (uint32_t i = 0; i < npre; i++)
            lptr[k][i + 1] += lptr[k][i];
        uint32_t *fill = malloc(((size_t)npre + 1) * sizeof *fill);
        if (!fill) {
            rc = SM_ENOMEM;
            break;
        }
        memcpy(fill, lptr[k], (size_t)npre * sizeof *fill);
        for (uint64_t e = 0; e < pr->npairs; e++)
            lidx[k][fill[pr->pairs[2 * e]]++] = (uint32_t)e;
        free(fill);
    }
    d->row = malloc(((size_t)net->n + 1) * sizeof *d->row);
    if (!d->row)
        rc = SM_ENOMEM;
    if (rc == 0) {
        b.cap = (uint64_t)(est * 1.02) + 1024;
        b.syn = malloc(b.cap * sizeof *b.syn);
        if (!b.syn)
            rc = SM_ENOMEM;
    }
    for (uint32_t p = 0; p < net->npops && rc == 0; p++) {
        const sm_pop_t *pop = &net->pops[p];
        for (uint32_t i = 0; i < pop->size && rc == 0; i++) {
            uint64_t start = b.n;
            d->row[pop->first + i] = start;
            for (uint32_t k = 0; k < net->nprojs && rc == 0; k++)
                if (net->projs[k].pre == p)
                    rc = sm__gen_row(net, k, i, seed, lptr[k], lidx[k], &b);
            if (rc == 0)
                sm__sort_row(b.syn + start, b.n - start);
        }
    }
    for (uint32_t k = 0; lptr && lidx && k < net->nprojs; k++) {
        free(lptr[k]);
        free(lidx[k]);
    }
    free(lptr);
    free(lidx);
    if (rc) {
        free(b.syn);
        return rc == SM_ENOMEM ? sm_errorf(eb, rc, "out of memory generating the synapses of '%s'", net->name)
                               : sm_errorf(eb, rc, "a list projection of '%s' has too many pairs", net->name);
    }
    d->row[net->n] = b.n;
    d->nsyn = b.n;
    if (b.n < b.cap) { /* give back the slack */
        sm_syn_t *s = realloc(b.syn, (b.n ? b.n : 1) * sizeof *s);
        if (s)
            b.syn = s;
    }
    d->syn = b.syn;
    return 0;
}

/* ---- partitioning ---- */

enum { SM__LIM_NEURONS, SM__LIM_MEMORY, SM__LIM_FANIN, SM__LIM_COUNT };

/* How the last partition closed its cores, for the message when they are too many for the mesh. */
typedef struct {
    uint64_t closed_by[SM__LIM_COUNT];
    uint32_t cap_neurons;
} sm__pstat_t;

#define SM__MESH_SIDE_MAX 4096u
#define SM__MESH_TILES_MAX (1u << 22)

static int sm__route(const sm_net_t *net, const sm_chip_t *chip, sm_deploy_t *d, sm_errbuf_t *eb);
static int sm__partition_fanout(const sm_net_t *net, const sm_chip_t *chip, sm_deploy_t *d, sm_errbuf_t *eb);
static uint32_t sm__fanout(const sm_net_t *net, const sm_chip_t *chip, sm_deploy_t *d, sm_errbuf_t *eb);

/* The end of a "does not fit" message: a w x h mesh of the same chip holds every core; it is named only
 * after a trial deployment on it succeeds, since routing tables can overflow on it even so. A chip with a
 * preset's per-core limits is named as --chip PRESET:WxH, any other as a mesh for its chip file. */
static void sm__suggest_mesh(const sm_net_t *net, const sm_chip_t *chip, const sm_deploy_t *d, uint64_t w,
                             uint64_t h, char *out, size_t cap)
{
    char base[SM_NAME_MAX], mesh[96];
    sm_chip_t big = *chip, pre;
    uint64_t board = (uint64_t)chip->chips_x * chip->chips_y > 1 || strchr(chip->name, '*') != NULL,
             cw = chip->width / chip->chips_x,
             ch = chip->height / chip->chips_y;
    snprintf(base, sizeof base, "%s", chip->name);
    char *colon = strpbrk(base, ":*");
    if (colon)
        *colon = '\0';
    if (w > SM__MESH_SIDE_MAX || h > SM__MESH_SIDE_MAX || w * h > SM__MESH_TILES_MAX) {
        snprintf(out, cap, "no mesh size fits: it would take %llux%llu tiles, more than the %u tiles (at most %u "
                 "a side) supported", (unsigned long long)w, (unsigned long long)h, SM__MESH_TILES_MAX,
                 SM__MESH_SIDE_MAX);
        return;
    }
    int preset = sm_chip_preset(base, &pre) == 0 && pre.cores_per_tile == chip->cores_per_tile &&
                 pre.max_neurons == chip->max_neurons && pre.synapse_memory == chip->synapse_memory &&
                 pre.synapse_bytes == chip->synapse_bytes && pre.max_fan_in == chip->max_fan_in &&
                 pre.max_fan_out == chip->max_fan_out && pre.table_entries == chip->table_entries &&
                 pre.max_delay_steps == chip->max_delay_steps;
    if (board && preset && cw == pre.width && ch == pre.height)
        snprintf(mesh, sizeof mesh, "--chip %s*%llux%llu", base, (unsigned long long)(w / cw),
                 (unsigned long long)(h / ch));
    else if (board)
        snprintf(mesh, sizeof mesh, "\"board\": {\"chips_x\": %llu, \"chips_y\": %llu} in the chip file",
                 (unsigned long long)(w / cw), (unsigned long long)(h / ch));
    else if (preset)
        snprintf(mesh, sizeof mesh, "--chip %s:%llux%llu", base, (unsigned long long)w, (unsigned long long)h);
    else
        snprintf(mesh, sizeof mesh, "\"mesh\": {\"width\": %llu, \"height\": %llu} in the chip file",
                 (unsigned long long)w, (unsigned long long)h);
    /* Trial on the larger mesh: the same synapses and cores, fresh pieces and tables (the partition does not
     * depend on the mesh, so the cores fit; the routing tables may not). */
    sm_deploy_t t = *d;
    sm_errbuf_t teb = {0};
    big.width = (uint32_t)w;
    big.height = (uint32_t)h;
    if (board) {
        big.chips_x = (uint32_t)(w / cw);
        big.chips_y = (uint32_t)(h / ch);
    }
    t.chip = big;
    t.cores = NULL;
    t.ncores = 0;
    t.pieces = NULL;
    t.npieces = 0;
    t.piece_of = NULL;
    t.trees = NULL;
    t.tree_off = NULL;
    t.table_entries = 0;
    t.max_table = 0;
    memset(&t.mesh, 0, sizeof t.mesh);
    t.fanout_rounds = 0;
    /* The cores are the ones just partitioned, in order on the larger mesh. */
    int rc = SM_ENOMEM;
    if ((t.cores = malloc(((size_t)d->ncores + 1) * sizeof *t.cores)) != NULL) {
        memcpy(t.cores, d->cores, (size_t)d->ncores * sizeof *t.cores);
        t.ncores = d->ncores;
        for (uint32_t c = 0; c < t.ncores; c++) {
            t.cores[c].tile = c / big.cores_per_tile;
            t.cores[c].slot = c % big.cores_per_tile;
        }
        rc = sm__route(net, &big, &t, &teb);
    }
    free(t.cores);
    free(t.pieces);
    free(t.piece_of);
    free(t.trees);
    free(t.tree_off);
    sm_mesh_free(&t.mesh);
    if (rc == 0)
        snprintf(out, cap, "%s would fit", mesh);
    else if (rc == SM_ENOFIT)
        snprintf(out, cap, "a %llux%llu mesh (%s) would hold the cores but not the routing tables of %u entries "
                 "per router, even compressed; use a chip with larger routing tables",
                 (unsigned long long)w, (unsigned long long)h, mesh, chip->table_entries);
    else
        snprintf(out, cap, "%s would hold the cores (the trial deployment on it failed: %s)", mesh,
                 sm_strerror(rc));
}

/* Incoming lists: for each neuron, its presynaptic neurons (built once, used by every partition round). */
typedef struct {
    uint64_t *iptr; /* [n + 1] */
    uint32_t *src;
} sm__incoming_t;

static void sm__incoming_free(sm__incoming_t *in)
{
    free(in->iptr);
    free(in->src);
    in->iptr = NULL;
    in->src = NULL;
}

static int sm__incoming(const sm_deploy_t *d, sm__incoming_t *in)
{
    uint32_t n = d->n;
    in->iptr = calloc((size_t)n + 1, sizeof *in->iptr);
    in->src = malloc((d->nsyn ? d->nsyn : 1) * sizeof *in->src);
    uint64_t *fill = malloc(((size_t)n ? n : 1) * sizeof *fill);
    if (!in->iptr || !in->src || !fill) {
        free(fill);
        sm__incoming_free(in);
        return SM_ENOMEM;
    }
    for (uint64_t s = 0; s < d->nsyn; s++)
        in->iptr[SM_SYN_POST(d->syn[s].tgt) + 1]++;
    for (uint32_t j = 0; j < n; j++)
        in->iptr[j + 1] += in->iptr[j];
    memcpy(fill, in->iptr, (size_t)n * sizeof *fill);
    for (uint32_t i = 0; i < n; i++)
        for (uint64_t s = d->row[i]; s < d->row[i + 1]; s++)
            in->src[fill[SM_SYN_POST(d->syn[s].tgt)]++] = i;
    free(fill);
    return 0;
}

static int sm__partition(const sm_net_t *net, const sm_chip_t *chip, uint32_t cap_neurons, sm__pstat_t *ps,
                         sm_deploy_t *d, const sm__incoming_t *in, sm_errbuf_t *eb)
{
    uint32_t n = net->n;
    int rc = 0;
    const uint64_t *iptr = in->iptr;
    const uint32_t *src = in->src;
    uint32_t *stamp = malloc(((size_t)n ? n : 1) * sizeof *stamp);
    uint64_t cap = 64;
    sm_core_t *cores = malloc(cap * sizeof *cores);
    if (!stamp || !cores) {
        rc = sm_errorf(eb, SM_ENOMEM, "out of memory partitioning '%s'", net->name);
        goto out;
    }
    memset(stamp, 0xff, (size_t)n * sizeof *stamp);

    uint64_t closed_by[SM__LIM_COUNT] = {0};
    uint32_t nc = 0;
    sm_core_t cur = {0};
    for (uint32_t j = 0; j < n; j++) {
        uint64_t indeg = iptr[j + 1] - iptr[j];
        for (int attempt = 0; attempt < 2; attempt++) {
            uint32_t fresh = 0;
            for (uint64_t s = iptr[j]; s < iptr[j + 1]; s++)
                if (stamp[src[s]] != nc) {
                    stamp[src[s]] = nc;
                    fresh++;
                }
            int lim = -1;
            if (cur.count + 1 > cap_neurons)
                lim = SM__LIM_NEURONS;
            else if ((cur.synapses + indeg) * chip->synapse_bytes > chip->synapse_memory)
                lim = SM__LIM_MEMORY;
            else if ((uint64_t)cur.fan_in + fresh > chip->max_fan_in)
                lim = SM__LIM_FANIN;
            if (lim < 0) {
                cur.count++;
                cur.synapses += indeg;
                cur.fan_in += fresh;
                break;
            }
            if (attempt == 1 || cur.count == 0) {
                /* Even an empty core cannot take this neuron. */
                uint32_t p = 0;
                while (p + 1 < net->npops && net->pops[p + 1].first <= j)
                    p++;
                if (lim == SM__LIM_MEMORY)
                    rc = sm_errorf(eb, SM_ENOFIT,
                                   "neuron %u of population '%s' receives %llu synapses (%llu bytes), more than "
                                   "a core's synapse memory of %llu bytes on chip '%s'; no mesh size fits it",
                                   j - net->pops[p].first, net->pops[p].name, (unsigned long long)indeg,
                                   (unsigned long long)(indeg * chip->synapse_bytes),
                                   (unsigned long long)chip->synapse_memory, chip->name);
                else
                    rc = sm_errorf(eb, SM_ENOFIT,
                                   "neuron %u of population '%s' has %u distinct presynaptic neurons, more than "
                                   "a core's fan-in of %u on chip '%s'; no mesh size fits it",
                                   j - net->pops[p].first, net->pops[p].name, fresh, chip->max_fan_in,
                                   chip->name);
                goto out;
            }
            closed_by[lim]++;
            cur.syn_bytes = cur.synapses * chip->synapse_bytes;
            if (nc == cap) {
                cap *= 2;
                sm_core_t *ncores = realloc(cores, cap * sizeof *ncores);
                if (!ncores) {
                    rc = sm_errorf(eb, SM_ENOMEM, "out of memory partitioning '%s'", net->name);
                    goto out;
                }
                cores = ncores;
            }
            cores[nc++] = cur;
            memset(&cur, 0, sizeof cur);
            cur.first = j;
        }
    }
    if (cur.count > 0 || nc == 0) {
        cur.syn_bytes = cur.synapses * chip->synapse_bytes;
        if (nc == cap) {
            sm_core_t *ncores = realloc(cores, (cap + 1) * sizeof *ncores);
            if (!ncores) {
                rc = sm_errorf(eb, SM_ENOMEM, "out of memory partitioning '%s'", net->name);
                goto out;
            }
            cores = ncores;
        }
        cores[nc++] = cur;
    }
    memcpy(ps->closed_by, closed_by, sizeof closed_by);
    ps->cap_neurons = cap_neurons;
    for (uint32_t c = 0; c < nc; c++) { /* in order until a placer moves them */
        cores[c].tile = c / chip->cores_per_tile;
        cores[c].slot = c % chip->cores_per_tile;
    }
    d->cores = cores;
    d->ncores = nc;
    cores = NULL;
out:
    free(stamp);
    free(cores);
    return rc;
}

/* ---- pieces, keys and routing tables ---- */

static int sm__route(const sm_net_t *net, const sm_chip_t *chip, sm_deploy_t *d, sm_errbuf_t *eb)
{
    uint32_t n = net->n, np = 0, cap = 64;
    int rc = 0;
    sm_piece_t *pieces = malloc(cap * sizeof *pieces);
    d->piece_of = malloc(((size_t)n ? n : 1) * sizeof *d->piece_of);
    if (!pieces || !d->piece_of) {
        free(pieces);
        return sm_errorf(eb, SM_ENOMEM, "out of memory");
    }
    for (uint32_t c = 0; c < d->ncores; c++) {
        const sm_core_t *co = &d->cores[c];
        uint32_t j = co->first, end = co->first + co->count;
        while (j < end) {
            uint32_t p = 0;
            while (p + 1 < net->npops && net->pops[p + 1].first <= j)
                p++;
            uint32_t pend = net->pops[p].first + net->pops[p].size;
            if (pend > end)
                pend = end;
            if (np == cap) {
                cap *= 2;
                sm_piece_t *npc = realloc(pieces, cap * sizeof *npc);
                if (!npc) {
                    free(pieces);
                    return sm_errorf(eb, SM_ENOMEM, "out of memory");
                }
                pieces = npc;
            }
            sm_piece_t *pc = &pieces[np];
            memset(pc, 0, sizeof *pc);
            pc->core = c;
            pc->pop = p;
            pc->first = j;
            pc->count = pend - j;
            for (uint32_t q = j; q < pend; q++)
                d->piece_of[q] = np;
            np++;
            j = pend;
        }
    }
    d->pieces = pieces;
    d->npieces = np;
    uint32_t kb = 0;
    while ((1ull << kb) < chip->max_neurons)
        kb++;
    d->key_bits = kb;
    if (kb >= 32 || (uint64_t)np << kb > UINT32_MAX)
        return sm_errorf(eb, SM_ENOFIT, "%u population pieces of up to %u neurons need more than 32 key bits", np,
                         chip->max_neurons);
    /* Tables are built without a limit, then compressed where they exceed the chip's capacity. */
    if ((rc = sm_mesh_init(&d->mesh, chip->width, chip->height, chip->cores_per_tile, UINT32_MAX / 2)) != 0)
        return sm_errorf(eb, rc, "cannot build a %ux%u mesh: %s", chip->width, chip->height, sm_strerror(rc));
    if (chip->chips_x * chip->chips_y > 1) { /* a board: which links join chips */
        d->mesh.chip_w = chip->width / chip->chips_x;
        d->mesh.chip_h = chip->height / chip->chips_y;
    }

    /* Destination cores of each piece; fan-out of each core. */
    uint32_t *mark = malloc((size_t)d->ncores * sizeof *mark), *dst = malloc((size_t)d->ncores * sizeof *dst);
    if (!mark || !dst) {
        free(mark);
        free(dst);
        return sm_errorf(eb, SM_ENOMEM, "out of memory");
    }
    memset(mark, 0xff, (size_t)d->ncores * sizeof *mark);
    uint32_t tiles_all = sm_mesh_tiles(&d->mesh);
    uint64_t tcap = 1024, tn = 0;
    uint64_t *tbuf = malloc((size_t)tiles_all * sizeof *tbuf);
    d->trees = malloc(tcap * sizeof *d->trees);
    d->tree_off = calloc((size_t)np + 1, sizeof *d->tree_off);
    if (!tbuf || !d->trees || !d->tree_off)
        rc = sm_errorf(eb, SM_ENOMEM, "out of memory");
    for (uint32_t q = 0; q < np && rc == 0; q++) {
        sm_piece_t *pc = &pieces[q];
        uint32_t nd = 0;
        pc->key = q << kb;
        pc->mask = ~((1u << kb) - 1u);
        for (uint32_t i = pc->first; i < pc->first + pc->count; i++) {
            uint32_t last = UINT32_MAX;
            for (uint64_t s = d->row[i]; s < d->row[i + 1]; s++) {
                uint32_t c = pieces[d->piece_of[SM_SYN_POST(d->syn[s].tgt)]].core;
                if (c == last) /* rows are sorted by target, so cores come in runs */
                    continue;
                last = c;
                if (mark[c] != q) {
                    mark[c] = q;
                    dst[nd++] = d->cores[c].tile * chip->cores_per_tile + d->cores[c].slot; /* chip core */
                }
            }
        }
        pc->ndest = nd;
        d->tree_off[q] = tn;
        d->tree_off[q + 1] = tn;
        if (nd == 0)
            continue; /* nothing listens: no table entries */
        uint32_t nt = 0;
        rc = sm_mesh_add_tree(&d->mesh, d->cores[pc->core].tile, pc->key, pc->mask, dst, nd, tbuf, &nt, eb);
        if (rc == 0) {
            pc->hops = nt - 1; /* every router of the tree but its root has one incoming link */
            if (tn + nt > tcap) {
                while (tn + nt > tcap)
                    tcap *= 2;
                uint64_t *nt_ = realloc(d->trees, tcap * sizeof *nt_);
                if (!nt_) {
                    rc = sm_errorf(eb, SM_ENOMEM, "out of memory for the multicast trees");
                    break;
                }
                d->trees = nt_;
            }
            memcpy(d->trees + tn, tbuf, (size_t)nt * sizeof *tbuf);
            tn += nt;
            d->tree_off[q + 1] = tn;
        }
    }
    free(mark);
    free(dst);
    free(tbuf);
    if (rc)
        return rc;
    if (tn < tcap) { /* give back the slack */
        uint64_t *t = realloc(d->trees, (tn ? tn : 1) * sizeof *t);
        if (t)
            d->trees = t;
    }
    uint32_t tiles = sm_mesh_tiles(&d->mesh), fullest = 0;
    uint64_t before = 0;
    for (uint32_t t = 0; t < tiles; t++) {
        before += d->mesh.tables[t].n;
        if (d->mesh.tables[t].n > fullest)
            fullest = d->mesh.tables[t].n;
    }
    d->table_entries_uncompressed = before;
    d->max_table_uncompressed = fullest;
    if (fullest > chip->table_entries || d->compress_all) {
        /* Ordered covering on the keys in use: every key keeps its routers, links and cores. */
        uint64_t nk = 0;
        for (uint32_t q = 0; q < np; q++)
            nk += pieces[q].ndest ? pieces[q].count : 0;
        uint32_t *keys = malloc((nk ? nk : 1) * sizeof *keys);
        if (!keys)
            return sm_errorf(eb, SM_ENOMEM, "out of memory compressing the routing tables");
        nk = 0;
        for (uint32_t q = 0; q < np; q++)
            for (uint32_t i = 0; pieces[q].ndest && i < pieces[q].count; i++)
                keys[nk++] = pieces[q].key + i;
        for (uint32_t t = 0; t < tiles; t++)
            d->mesh.tables[t].cap = chip->table_entries;
        rc = sm_mesh_compress(&d->mesh, keys, nk, d->compress_all ? 0 : chip->table_entries, NULL, NULL, eb);
        free(keys);
        if (rc == SM_ENOFIT) {
            char msg[SM_ERRBUF_SIZE];
            snprintf(msg, sizeof msg, "%s", eb ? eb->msg : "");
            return sm_errorf(eb, SM_ENOFIT,
                             "network '%s' does not fit chip '%s': its routing tables need up to %u entries a "
                             "router; compressed, %s; spread the network over a larger mesh or a chip with larger "
                             "tables", net->name, chip->name, fullest, msg);
        }
        if (rc)
            return rc;
    }
    for (uint32_t t = 0; t < tiles; t++) {
        d->mesh.tables[t].cap = chip->table_entries;
        d->table_entries += d->mesh.tables[t].n;
        if (d->mesh.tables[t].n > d->max_table)
            d->max_table = d->mesh.tables[t].n;
    }
    return 0;
}

/* Fan-out of every core: distinct (neuron, destination core) pairs. Returns the most neurons a core may hold
 * for every core to meet the fan-out limit in the next round (UINT32_MAX: all meet it now), or 0 when a single
 * neuron alone exceeds it. */
static uint32_t sm__fanout(const sm_net_t *net, const sm_chip_t *chip, sm_deploy_t *d, sm_errbuf_t *eb)
{
    uint32_t *core_of = malloc(((size_t)d->n + 1) * sizeof *core_of), cap = UINT32_MAX;
    if (!core_of) {
        sm_errorf(eb, SM_ENOMEM, "out of memory");
        return 0;
    }
    for (uint32_t c = 0; c < d->ncores; c++)
        for (uint32_t i = d->cores[c].first; i < d->cores[c].first + d->cores[c].count; i++)
            core_of[i] = c;
    for (uint32_t c = 0; c < d->ncores; c++) {
        uint64_t fo = 0;
        uint32_t worst = 0, worst_i = d->cores[c].first;
        for (uint32_t i = d->cores[c].first; i < d->cores[c].first + d->cores[c].count; i++) {
            uint32_t last = UINT32_MAX, runs = 0;
            for (uint64_t s = d->row[i]; s < d->row[i + 1]; s++) {
                uint32_t b = core_of[SM_SYN_POST(d->syn[s].tgt)];
                runs += b != last;
                last = b;
            }
            fo += runs;
            if (runs > worst) {
                worst = runs;
                worst_i = i;
            }
        }
        d->cores[c].fan_out = fo > UINT32_MAX ? UINT32_MAX : (uint32_t)fo;
        if (fo > chip->max_fan_out) {
            if (worst > chip->max_fan_out) {
                uint32_t p = 0;
                while (p + 1 < net->npops && net->pops[p + 1].first <= worst_i)
                    p++;
                sm_errorf(eb, SM_ENOFIT,
                          "neuron %u of population '%s' sends to %u cores, more than a core's fan-out of %u on "
                          "chip '%s'; no partition fits it",
                          worst_i - net->pops[p].first, net->pops[p].name, worst, chip->max_fan_out, chip->name);
                free(core_of);
                return 0;
            }
            /* shrink in proportion, a little more to converge (fan-out per neuron grows as cores shrink) */
            double want = 0.97 * (double)d->cores[c].count * chip->max_fan_out / (double)fo;
            uint32_t k = want < 1 ? 1 : (uint32_t)want;
            if (k >= d->cores[c].count)
                k = d->cores[c].count - 1;
            if (k < cap)
                cap = k ? k : 1;
        }
    }
    free(core_of);
    return cap;
}

/* Partition in order; when a core sends to more cores than its fan-out allows, partition again with fewer
 * neurons per core, until every core fits. */
static int sm__partition_fanout(const sm_net_t *net, const sm_chip_t *chip, sm_deploy_t *d, sm_errbuf_t *eb)
{
    uint32_t cap = chip->max_neurons;
    sm__incoming_t in;
    sm__pstat_t ps = {{0}, 0};
    int rc = 0;
    if (sm__incoming(d, &in) != 0)
        return sm_errorf(eb, SM_ENOMEM, "out of memory partitioning '%s'", net->name);
    for (;;) {
        d->fanout_rounds++;
        if ((rc = sm__partition(net, chip, cap, &ps, d, &in, eb)) != 0)
            break;
        uint32_t next = sm__fanout(net, chip, d, eb);
        if (next == 0) {
            rc = eb ? eb->code : SM_ENOFIT;
            break;
        }
        if (next == UINT32_MAX)
            break;
        free(d->cores);
        d->cores = NULL;
        d->ncores = 0;
        cap = next < cap ? next : cap - 1;
    }
    sm__incoming_free(&in);
    if (rc != 0)
        return rc;
    /* The partition does not depend on the mesh: only now is the number of cores known. */
    uint64_t avail = (uint64_t)chip->width * chip->height * chip->cores_per_tile, nc = d->ncores;
    if (nc <= avail)
        return 0;
    static const char *const what[] = {"neurons per core", "synapse memory per core",
                                       "fan-in (distinct presynaptic neurons) per core",
                                       "fan-out ((neuron, destination core) pairs) per core"};
    int lim = 0;
    for (int l = 1; l < SM__LIM_COUNT; l++)
        if (ps.closed_by[l] > ps.closed_by[lim])
            lim = l;
    uint64_t limval = lim == 0 ? chip->max_neurons : lim == 1 ? chip->synapse_memory : chip->max_fan_in;
    if (lim == SM__LIM_NEURONS && ps.cap_neurons < chip->max_neurons) { /* cores were shrunk for fan-out */
        lim = 3;
        limval = chip->max_fan_out;
    }
    uint64_t tiles = (nc + chip->cores_per_tile - 1) / chip->cores_per_tile;
    /* Suggest the squarest mesh with enough tiles, never smaller than the chip's own sides; on a board, the
     * squarest board of whole chips (a single chip is a board of 1x1-tile "chips"). */
    /* a board: several chips, or one asked for as a board (PRESET*1x1) */
    int board = (uint64_t)chip->chips_x * chip->chips_y > 1 || strchr(chip->name, '*') != NULL;
    uint64_t cw = board ? chip->width / chip->chips_x : 1, ch = board ? chip->height / chip->chips_y : 1;
    uint64_t units = (tiles + cw * ch - 1) / (cw * ch), by;
    uint64_t bx = (uint64_t)ceil(sqrt((double)units * (double)ch / (double)cw)); /* square in tiles */
    if (bx < 1)
        bx = 1;
    if (bx < chip->width / cw)
        bx = chip->width / cw;
    by = (units + bx - 1) / bx;
    if (by < chip->height / ch)
        by = chip->height / ch;
    uint64_t w = bx * cw, h = by * ch;
    char sugg[SM_ERRBUF_SIZE / 2];
    sm__suggest_mesh(net, chip, d, w, h, sugg, sizeof sugg);
    free(d->cores);
    d->cores = NULL;
    d->ncores = 0;
    return sm_errorf(eb, SM_ENOFIT,
                     "network '%s' does not fit chip '%s': it needs at least %llu cores, %llu more than the %llu "
                     "cores of %ux%u tiles x %u; cores fill up on %s (limit %llu); %s",
                     net->name, chip->name, (unsigned long long)nc, (unsigned long long)(nc - avail),
                     (unsigned long long)avail, chip->width, chip->height, chip->cores_per_tile, what[lim],
                     (unsigned long long)limval, sugg);
}

int sm_deploy_build(const sm_net_t *net, const sm_chip_t *chip, uint64_t seed, sm_deploy_t *d, sm_errbuf_t *eb)
{
    return sm_deploy_build_ex(net, chip, seed, NULL, d, eb);
}

int sm__place(sm_deploy_t *d, sm_placer_t placer, double *est_before, double *est_after, sm_errbuf_t *eb);
int sm__placement_apply(const sm_net_t *net, const sm_chip_t *chip, const sm_placement_t *pl, sm_deploy_t *d,
                        sm_errbuf_t *eb);

int sm_deploy_build_ex(const sm_net_t *net, const sm_chip_t *chip, uint64_t seed, const sm_deploy_opts_t *opts,
                       sm_deploy_t *d, sm_errbuf_t *eb)
{
    int rc;
    memset(d, 0, sizeof *d);
    d->net = net;
    d->chip = *chip;
    d->seed = seed;
    d->n = net->n;
    d->max_delay = 1;
    for (uint32_t k = 0; k < net->nprojs; k++) {
        if (net->projs[k].delay_steps > d->max_delay)
            d->max_delay = net->projs[k].delay_steps;
        if (net->projs[k].delay_steps > chip->max_delay_steps)
            return sm_errorf(eb, SM_ENOFIT,
                             "network '%s': projection %u (%s -> %s) has a delay of %u steps, more than the %u "
                             "steps chip '%s' supports",
                             net->name, k, net->pops[net->projs[k].pre].name, net->pops[net->projs[k].post].name,
                             net->projs[k].delay_steps, chip->max_delay_steps, chip->name);
    }
    const double est_syn = sm__expected_synapses(net);
    { /* many more synapses (over 2e7, seconds to generate) than all the cores' memory holds: say so before
       * generating them (minutes, gigabytes); smaller networks get the exact count and a mesh that fits below */
        double cores = (double)chip->width * chip->height * chip->cores_per_tile;
        double need = est_syn * chip->synapse_bytes, have = cores * (double)chip->synapse_memory;
        if (est_syn > 2e7 && need > 1.1 * have)
            return sm_errorf(eb, SM_ENOFIT,
                             "network '%s' does not fit chip '%s': its about %.3g synapses need about %.3g bytes of "
                             "synapse memory, more than the %.3g bytes of all its %.0f cores together (%llu bytes "
                             "each); the synapse memory alone needs at least %.0f cores (other limits, such as a "
                             "core's fan-in, may need more, or no mesh at all)",
                             net->name, chip->name, est_syn, need, have, cores,
                             (unsigned long long)chip->synapse_memory, ceil(need / (double)chip->synapse_memory));
    }
    sm_placer_t placer = opts ? opts->placer : SM_PLACE_ORDER;
    d->placer = placer;
    d->compress_all = opts ? opts->compress_all : 0;
    if ((rc = sm__connect(net, est_syn, seed, d, eb)) != 0)
        goto fail;
    d->est_hops_order = d->est_hops = -1; /* not computed */
    if (opts && opts->placement) {
        d->placer = opts->placement->placer; /* what placed the cores of the file */
        if ((rc = sm__placement_apply(net, chip, opts->placement, d, eb)) != 0)
            goto fail;
    } else {
        if ((rc = sm__partition_fanout(net, chip, d, eb)) != 0)
            goto fail;
        int est = placer != SM_PLACE_ORDER || (opts && opts->estimate);
        if ((rc = sm__place(d, placer, est ? &d->est_hops_order : NULL, est ? &d->est_hops : NULL, eb)) != 0)
            goto fail;
    }
    if ((rc = sm__route(net, chip, d, eb)) != 0)
        goto fail;
    return 0;
fail:
    sm_deploy_free(d);
    return rc;
}
