/* router/compress.c: routing-table compression by ordered covering (after Mundy et al. 2016): entries with the
 * same route merge into key/mask covers, each placed in the table's order so that every key in use keeps its route. */
#include <stdlib.h>
#include <string.h>

#include "spikemesh/router.h"

/* The entries a key in use matches, by entry id, in table order. */
typedef struct {
    uint32_t n, cap;
    uint32_t *v;    /* in[] while cap <= 2 */
    uint32_t in[2];
} sm__mlist_t;

/* The entries of one route and the best merge found among them. */
typedef struct {
    uint32_t route;
    uint32_t nmem, cap;
    uint32_t *mem;  /* ids of its entries in the table */
    uint32_t ns;    /* the merge: ns ids in s (0: none), covered by (ckey, cmask) */
    uint32_t *s;
    uint32_t ckey, cmask;
    int dirty;      /* the merge must be searched again */
} sm__group_t;

/* Working state of one table: entries by stable id (a merge adds an id and removes the ids it merges), the
 * table's order, the reduced keys in use with the entries each matches, and the route groups. */
typedef struct {
    uint32_t n, nid, idcap;
    uint32_t *order, *tmp;                    /* [idcap]: ids in table order; scratch */
    uint32_t *ekey, *emask, *eroute;          /* [idcap] */
    uint32_t *pos;                            /* [idcap]: position in order, UINT32_MAX once removed */
    uint8_t *mark;                            /* [idcap]: ids of the set being merged */
    uint32_t *keys, nkeys;                    /* reduced keys in use: sorted, distinct */
    sm__mlist_t *ml;                          /* [nkeys] */
    uint32_t *capt, ncapt;                    /* [nkeys]: keys the cover under evaluation captures */
    uint32_t *off;                            /* [5 * nkeys]: offending keys (values), then sm__eval's lists */
    sm__group_t *groups;
    uint32_t ngroups;
} sm__cx_t;

static int sm__u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t sm__popcount(uint32_t x)
{
#if defined(__GNUC__)
    return (uint32_t)__builtin_popcount(x);
#else
    uint32_t c = 0;
    for (; x; x &= x - 1u)
        c++;
    return c;
#endif
}

/* Index of the lowest set bit; 32 for 0. */
static uint32_t sm__ctz(uint32_t x)
{
    if (x == 0)
        return 32;
#if defined(__GNUC__)
    return (uint32_t)__builtin_ctz(x);
#else
    uint32_t c = 0;
    while (!(x & 1u)) {
        x >>= 1;
        c++;
    }
    return c;
#endif
}

/* The first index in [lo, hi) of the sorted keys whose key is at least x (hi when none). */
static uint32_t sm__keys_below(const uint32_t *keys, uint32_t lo, uint32_t hi, uint64_t x)
{
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (keys[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Appends to out the indices in [lo, hi) of the sorted keys that match (key, mask), in increasing order. The keys
 * in [lo, hi) agree on every bit above `bit`; one binary search splits the range at each bit down to the mask's
 * lowest cared bit, and a don't-care bit visits both halves. */
static void sm__match(const uint32_t *keys, uint32_t lo, uint32_t hi, int bit, uint32_t key, uint32_t mask,
                      uint32_t *out, uint32_t *nout)
{
    uint32_t low = ~mask;
    if ((low & (low + 1u)) == 0 && bit == 31) {
        /* A prefix mask (every cared bit above every don't-care one): the keys it matches are one range of the
         * sorted keys, [key, key + low]; two binary searches find it. */
        uint32_t first = key & mask, a = sm__keys_below(keys, lo, hi, first);
        uint32_t b = sm__keys_below(keys, a, hi, (uint64_t)(first | low) + 1u);
        for (uint32_t i = a; i < b; i++)
            out[(*nout)++] = i;
        return;
    }
    while (lo < hi) {
        if (bit < 0 || (mask & (bit >= 31 ? ~0u : (2u << bit) - 1u)) == 0) { /* nothing left to check */
            for (uint32_t i = lo; i < hi; i++)
                out[(*nout)++] = i;
            return;
        }
        uint32_t b = 1u << bit, a = lo, z = hi;
        while (a < z) {
            uint32_t mid = a + (z - a) / 2;
            if (keys[mid] & b)
                z = mid;
            else
                a = mid + 1;
        }
        if (mask & b) {
            if (key & b)
                lo = a;
            else
                hi = a;
        } else {
            sm__match(keys, lo, a, bit - 1, key, mask, out, nout);
            lo = a;
        }
        bit--;
    }
}

/* Inserts id at index at of a match list. Returns 0 or SM_ENOMEM. */
static int sm__ml_insert(sm__mlist_t *l, uint32_t at, uint32_t id)
{
    if (l->n == l->cap) {
        uint32_t ncap = l->cap * 2;
        uint32_t *v = malloc((size_t)ncap * sizeof *v);
        if (!v)
            return SM_ENOMEM;
        memcpy(v, l->v, (size_t)l->n * sizeof *v);
        if (l->v != l->in)
            free(l->v);
        l->v = v;
        l->cap = ncap;
    }
    memmove(l->v + at + 1, l->v + at, (size_t)(l->n - at) * sizeof *l->v);
    l->v[at] = id;
    l->n++;
    return 0;
}

static void sm__cx_free(sm__cx_t *cx)
{
    if (cx->ml)
        for (uint32_t j = 0; j < cx->nkeys; j++)
            if (cx->ml[j].v != cx->ml[j].in)
                free(cx->ml[j].v); /* NULL when never set up */
    if (cx->groups)
        for (uint32_t g = 0; g < cx->ngroups; g++) {
            free(cx->groups[g].mem);
            free(cx->groups[g].s);
        }
    free(cx->groups);
    free(cx->ml);
    free(cx->capt);
    free(cx->off);
    free(cx->keys);
    free(cx->order);
    free(cx->tmp);
    free(cx->ekey);
    free(cx->emask);
    free(cx->eroute);
    free(cx->pos);
    free(cx->mark);
}

/* The cover of a set of entries: every bit where their keys differ, or any of them does not care, is don't-care. */
static void sm__cover(const sm__cx_t *cx, const uint32_t *s, uint32_t ns, uint32_t *key, uint32_t *mask)
{
    uint32_t m = ~0u, k0 = cx->ekey[s[0]];
    for (uint32_t i = 0; i < ns; i++)
        m &= cx->emask[s[i]] & ~(cx->ekey[s[i]] ^ k0);
    *key = k0 & m;
    *mask = m;
}

/* Checks merging the entries s[0..*ns) (all of one route) into their cover C, with the sound rule of this file:
 * for every key k in use that C captures, with r(k) its route now (the first entry it matches, or none),
 *   - r(k) is none: unsound (C would give it a route);
 *   - r(k) is another route: the entry that resolves k must stay before C, so C goes after it (bounds lo);
 *   - r(k) is the route: the first entry k matches outside the set, when its route differs, must stay after C
 *     (bounds hi).
 * Keys outside C keep their first match (no entry of the set matches them). A merge is sound when no key of the
 * first kind is captured and the bounds leave room (lo <= hi): C then goes at any position in [lo, hi], counted in
 * the table before the merge. With refine, offending keys are shut out by fixing one don't-care bit of C at a
 * time, to the value that keeps the most entries of the set (the rest leave it), until the merge is sound or
 * fewer than two entries are left (*ns = 0). As the set shrinks, hi can only grow, so a key of another route
 * that is not in the way stays so and each round looks only at the keys that still are. Returns 1 when the set
 * (as refined) is sound, with its cover and bounds, 0 when it is not (only without refine); cx->capt then holds
 * the keys the first cover captured. */
static int sm__eval(sm__cx_t *cx, uint32_t route, uint32_t *s, uint32_t *ns, int refine, uint32_t *ckey,
                    uint32_t *cmask, uint32_t *plo, uint32_t *phi)
{
    uint32_t k, m, nnone = 0, nb = 0, na = 0, nbh = 0, first = 1, ok = 0;
    uint32_t *none = cx->off + cx->nkeys, *bl = none + cx->nkeys, *bh = bl + cx->nkeys, *al = bh + cx->nkeys;
    if (*ns < 2) {
        *ns = 0;
        return 1;
    }
    sm__cover(cx, s, *ns, &k, &m);
    cx->ncapt = 0;
    sm__match(cx->keys, 0, cx->nkeys, 31, k, m, cx->capt, &cx->ncapt);
    for (uint32_t i = 0; i < *ns; i++)
        cx->mark[s[i]] = 1;
    /* Keys without a route, keys of other routes, and keys of this route resolved by the set (a key of this route
     * resolved outside it is never in the way). */
    for (uint32_t i = 0; i < cx->ncapt; i++) {
        uint32_t j = cx->capt[i];
        const sm__mlist_t *l = &cx->ml[j];
        if (l->n == 0)
            none[nnone++] = j;
        else if (cx->eroute[l->v[0]] != route)
            bl[nb++] = j;
        else if (cx->mark[l->v[0]])
            al[na++] = j;
    }
    for (;;) {
        uint32_t hi = cx->n, lo = 0, noff = 0, w = 0;
        for (uint32_t i = 0; i < na; i++) {
            uint32_t j = al[i];
            const sm__mlist_t *l = &cx->ml[j];
            if ((cx->keys[j] & m) != k || !cx->mark[l->v[0]])
                continue;
            al[w++] = j;
            for (uint32_t e = 1; e < l->n; e++) {
                uint32_t id = l->v[e];
                if (cx->mark[id])
                    continue;
                if (cx->eroute[id] != route && cx->pos[id] < hi)
                    hi = cx->pos[id];
                break;
            }
        }
        na = w;
        w = 0;
        for (uint32_t i = 0; i < nnone; i++)
            if ((cx->keys[none[i]] & m) == k)
                none[w++] = none[i], cx->off[noff++] = cx->keys[none[i]];
        nnone = w;
        /* keys of other routes resolved at or after hi: in the way */
        w = 0;
        const uint32_t *from = first ? bl : bh;
        uint32_t nfrom = first ? nb : nbh;
        for (uint32_t i = 0; i < nfrom; i++) {
            uint32_t j = from[i];
            if ((cx->keys[j] & m) == k && cx->pos[cx->ml[j].v[0]] >= hi)
                bh[w++] = j, cx->off[noff++] = cx->keys[j];
        }
        nbh = w;
        first = 0;
        if (noff == 0) {
            for (uint32_t i = 0; i < nb; i++) {
                uint32_t j = bl[i], p = cx->pos[cx->ml[j].v[0]] + 1u;
                if ((cx->keys[j] & m) == k && p > lo)
                    lo = p;
            }
            *ckey = k;
            *cmask = m;
            *plo = lo;
            *phi = hi;
            ok = 1;
            break;
        }
        if (!refine)
            break;
        /* Fix one don't-care bit of the cover to a value an offending key lacks: the one that keeps the most
         * entries (they care about the bit and have that value), then the one that shuts out the most keys. */
        uint32_t keep[32][2], ones[32];
        memset(keep, 0, sizeof keep);
        memset(ones, 0, sizeof ones);
        for (uint32_t i = 0; i < *ns; i++) {
            uint32_t id = s[i];
            for (uint32_t x = cx->emask[id] & ~m; x; x &= x - 1u) {
                uint32_t b = sm__ctz(x);
                keep[b][(cx->ekey[id] >> b) & 1u]++;
            }
        }
        for (uint32_t x = ~m; x; x &= x - 1u) {
            uint32_t b = sm__ctz(x), c = 0;
            for (uint32_t o = 0; o < noff; o++)
                c += (cx->off[o] >> b) & 1u;
            ones[b] = c;
        }
        uint32_t bb = 32, bv = 0, bkeep = 0, bexcl = 0;
        for (uint32_t b = 0; b < 32; b++) {
            if (m & (1u << b))
                continue;
            for (uint32_t v = 0; v < 2; v++) {
                uint32_t excl = v ? noff - ones[b] : ones[b];
                if (excl == 0 || keep[b][v] == 0)
                    continue;
                if (keep[b][v] > bkeep || (keep[b][v] == bkeep && excl > bexcl)) {
                    bb = b;
                    bv = v;
                    bkeep = keep[b][v];
                    bexcl = excl;
                }
            }
        }
        if (bb == 32 || bkeep < 2) {
            for (uint32_t i = 0; i < *ns; i++)
                cx->mark[s[i]] = 0;
            *ns = 0;
            return 1;
        }
        w = 0;
        for (uint32_t i = 0; i < *ns; i++) {
            uint32_t id = s[i];
            if ((cx->emask[id] >> bb) & 1u && ((cx->ekey[id] >> bb) & 1u) == bv)
                s[w++] = id;
            else
                cx->mark[id] = 0;
        }
        *ns = w;
        sm__cover(cx, s, *ns, &k, &m); /* a subset: the cover only shrinks */
    }
    for (uint32_t i = 0; i < *ns; i++)
        cx->mark[s[i]] = 0;
    return (int)ok;
}

/* Rebuilds the order without the marked ids, inserting id c (when not UINT32_MAX) before position p, and updates
 * every position. */
static void sm__reorder(sm__cx_t *cx, uint32_t c, uint32_t p)
{
    uint32_t w = 0;
    for (uint32_t i = 0; i <= cx->n; i++) {
        if (i == p && c != UINT32_MAX)
            cx->tmp[w++] = c;
        if (i == cx->n)
            break;
        uint32_t id = cx->order[i];
        if (cx->mark[id])
            cx->pos[id] = UINT32_MAX;
        else
            cx->tmp[w++] = id;
    }
    uint32_t *t = cx->order;
    cx->order = cx->tmp;
    cx->tmp = t;
    cx->n = w;
    for (uint32_t i = 0; i < w; i++)
        cx->pos[cx->order[i]] = i;
}

/* Applies the merge of group g if it is still sound: its entries leave, their cover goes in at the position
 * within the sound bounds that follows ordered covering's order (after entries that are no more general, before
 * the more general ones). Returns 1 when applied, 0 when the merge is no longer sound, or SM_ENOMEM. */
static int sm__apply(sm__cx_t *cx, uint32_t g)
{
    sm__group_t *gr = &cx->groups[g];
    uint32_t ns = gr->ns, k, m, lo, hi;
    if (!sm__eval(cx, gr->route, gr->s, &ns, 0, &k, &m, &lo, &hi) || ns != gr->ns)
        return 0;
    uint32_t c = cx->nid++, gen = 32u - sm__popcount(m), p = hi;
    cx->ekey[c] = k;
    cx->emask[c] = m;
    cx->eroute[c] = gr->route;
    cx->mark[c] = 0;
    for (uint32_t i = 0; i < ns; i++)
        cx->mark[gr->s[i]] = 1;
    while (p > lo) {
        uint32_t id = cx->order[p - 1];
        if (cx->mark[id] || 32u - sm__popcount(cx->emask[id]) > gen)
            p--;
        else
            break;
    }
    /* The captured keys lose the merged entries and match the cover at position p. */
    for (uint32_t i = 0; i < cx->ncapt; i++) {
        sm__mlist_t *l = &cx->ml[cx->capt[i]];
        uint32_t w = 0, at;
        for (uint32_t e = 0; e < l->n; e++)
            if (!cx->mark[l->v[e]])
                l->v[w++] = l->v[e];
        l->n = w;
        for (at = 0; at < l->n && cx->pos[l->v[at]] < p; at++)
            ;
        if (sm__ml_insert(l, at, c) != 0)
            return SM_ENOMEM;
    }
    sm__reorder(cx, c, p);
    uint32_t w = 0;
    for (uint32_t i = 0; i < gr->nmem; i++)
        if (!cx->mark[gr->mem[i]])
            gr->mem[w++] = gr->mem[i];
    gr->mem[w++] = c;
    gr->nmem = w;
    for (uint32_t i = 0; i < ns; i++)
        cx->mark[gr->s[i]] = 0;
    gr->ns = gr->nmem; /* its next merge, at most */
    gr->dirty = 1;
    /* A merge whose cover meets this one may have changed: search it again. */
    for (uint32_t h = 0; h < cx->ngroups; h++) {
        sm__group_t *o = &cx->groups[h];
        if (o->ns >= 2 && ((o->ckey ^ k) & o->cmask & m) == 0)
            o->dirty = 1;
    }
    return 1;
}

/* Loads table t and the sorted keys in use (reduced to the bits some entry cares about) into cx, with each key's
 * matching entries. Returns 0 or SM_ENOMEM. */
static int sm__cx_load(sm__cx_t *cx, const sm_table_t *t, const uint32_t *keys, uint32_t nkeys)
{
    uint32_t n = t->n, shift = 32;
    memset(cx, 0, sizeof *cx);
    cx->idcap = 2 * n + 1;
    cx->order = malloc((size_t)cx->idcap * sizeof *cx->order);
    cx->tmp = malloc((size_t)cx->idcap * sizeof *cx->tmp);
    cx->ekey = malloc((size_t)cx->idcap * sizeof *cx->ekey);
    cx->emask = malloc((size_t)cx->idcap * sizeof *cx->emask);
    cx->eroute = malloc((size_t)cx->idcap * sizeof *cx->eroute);
    cx->pos = malloc((size_t)cx->idcap * sizeof *cx->pos);
    cx->mark = calloc(cx->idcap, 1);
    if (!cx->order || !cx->tmp || !cx->ekey || !cx->emask || !cx->eroute || !cx->pos || !cx->mark)
        return SM_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        const sm_route_entry_t *e = &t->entries[i];
        cx->ekey[i] = e->key & e->mask;
        cx->emask[i] = e->mask;
        cx->eroute[i] = e->route;
        cx->order[i] = i;
        cx->pos[i] = i;
        uint32_t z = sm__ctz(e->mask);
        if (z < shift)
            shift = z;
    }
    cx->n = cx->nid = n;
    /* Bits below every entry's lowest cared bit are don't-care in every cover too: keys that differ only there
     * route alike, so one key stands for them all. */
    uint32_t low = shift >= 32 ? ~0u : (1u << shift) - 1u;
    cx->keys = malloc(((size_t)nkeys + 1) * sizeof *cx->keys);
    if (!cx->keys)
        return SM_ENOMEM;
    for (uint32_t i = 0; i < nkeys; i++) {
        uint32_t r = keys[i] & ~low;
        if (cx->nkeys == 0 || cx->keys[cx->nkeys - 1] != r)
            cx->keys[cx->nkeys++] = r;
    }
    cx->ml = calloc((size_t)cx->nkeys + 1, sizeof *cx->ml);
    cx->capt = malloc(((size_t)cx->nkeys + 1) * sizeof *cx->capt);
    cx->off = malloc((5 * (size_t)cx->nkeys + 1) * sizeof *cx->off);
    if (!cx->ml || !cx->capt || !cx->off)
        return SM_ENOMEM;
    for (uint32_t j = 0; j < cx->nkeys; j++) {
        cx->ml[j].n = 0;
        cx->ml[j].cap = 2;
        cx->ml[j].v = cx->ml[j].in;
    }
    for (uint32_t i = 0; i < n; i++) {
        cx->ncapt = 0;
        sm__match(cx->keys, 0, cx->nkeys, 31, cx->ekey[i], cx->emask[i], cx->capt, &cx->ncapt);
        for (uint32_t c = 0; c < cx->ncapt; c++) {
            sm__mlist_t *l = &cx->ml[cx->capt[c]];
            if (sm__ml_insert(l, l->n, i) != 0)
                return SM_ENOMEM;
        }
    }
    return 0;
}

/* Removes the entries that resolve no key in use (every key that matches them matches an earlier entry, or none
 * matches them at all): no key in use changes its route. */
static void sm__drop_dead(sm__cx_t *cx)
{
    uint32_t dead = 0;
    for (uint32_t i = 0; i < cx->n; i++)
        cx->mark[cx->order[i]] = 1;
    for (uint32_t j = 0; j < cx->nkeys; j++)
        if (cx->ml[j].n > 0)
            cx->mark[cx->ml[j].v[0]] = 0;
    for (uint32_t i = 0; i < cx->n; i++)
        dead += cx->mark[cx->order[i]];
    if (dead > 0) {
        for (uint32_t j = 0; j < cx->nkeys; j++) {
            sm__mlist_t *l = &cx->ml[j];
            uint32_t w = 0;
            for (uint32_t e = 0; e < l->n; e++)
                if (!cx->mark[l->v[e]])
                    l->v[w++] = l->v[e];
            l->n = w;
        }
        sm__reorder(cx, UINT32_MAX, 0);
    }
    for (uint32_t i = 0; i < cx->nid; i++)
        cx->mark[i] = 0;
}

static int sm__u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Groups the entries by route. Returns 0 or SM_ENOMEM. */
static int sm__group(sm__cx_t *cx)
{
    uint32_t n = cx->n, ng = 0;
    uint64_t *rk = malloc(((size_t)n + 1) * sizeof *rk);
    if (!rk)
        return SM_ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        rk[i] = (uint64_t)cx->eroute[cx->order[i]] << 32 | i;
    qsort(rk, n, sizeof *rk, sm__u64_cmp);
    for (uint32_t i = 0; i < n; i++)
        ng += i == 0 || rk[i] >> 32 != rk[i - 1] >> 32;
    cx->groups = calloc((size_t)ng + 1, sizeof *cx->groups);
    if (!cx->groups) {
        free(rk);
        return SM_ENOMEM;
    }
    cx->ngroups = ng;
    for (uint32_t i = 0, g = 0; i < n; g++) {
        uint32_t e = i;
        while (e < n && rk[e] >> 32 == rk[i] >> 32)
            e++;
        sm__group_t *gr = &cx->groups[g];
        gr->route = (uint32_t)(rk[i] >> 32);
        gr->cap = e - i; /* a merge takes out two entries or more and puts one in: a group never grows */
        gr->mem = malloc((size_t)gr->cap * sizeof *gr->mem);
        gr->s = malloc((size_t)gr->cap * sizeof *gr->s);
        if (!gr->mem || !gr->s) {
            free(rk);
            return SM_ENOMEM;
        }
        for (; i < e; i++) {
            uint32_t id = cx->order[(uint32_t)rk[i]];
            gr->mem[gr->nmem++] = id;
        }
        gr->dirty = gr->nmem >= 2;
    }
    free(rk);
    return 0;
}

/* Compresses t against the sorted keys in use until it holds at most target entries (0: as far as it goes).
 * *left: its entries afterwards. Returns 0, SM_ENOFIT (the table is left at the fewest entries found) or
 * SM_ENOMEM (the table is unchanged). */
static int sm__compress(sm_table_t *t, const uint32_t *keys, uint32_t nkeys, uint32_t target, uint32_t *left)
{
    sm__cx_t cx;
    int rc, swept = 0;
    *left = t->n;
    if (t->n == 0 || (target != 0 && t->n <= target))
        return 0;
    if ((rc = sm__cx_load(&cx, t, keys, nkeys)) != 0)
        goto out;
    sm__drop_dead(&cx);
    if ((rc = sm__group(&cx)) != 0)
        goto out;
    /* Ordered covering: apply the sound merge that takes the most entries, over all routes, until the table fits.
     * Lazily: a merge another one may have changed keeps its old size as an estimate and is searched again only
     * when that estimate is the largest. */
    for (uint32_t g = 0; g < cx.ngroups; g++)
        cx.groups[g].ns = cx.groups[g].nmem;
    while (target == 0 || cx.n > target) {
        uint32_t best = UINT32_MAX, lo, hi;
        for (uint32_t g = 0; g < cx.ngroups; g++)
            if (cx.groups[g].ns >= 2 && (best == UINT32_MAX || cx.groups[g].ns > cx.groups[best].ns))
                best = g;
        if (best == UINT32_MAX) {
            if (swept)
                break;
            /* Merges were searched again only where a cover changed: search every group once more. */
            swept = 1;
            for (uint32_t g = 0; g < cx.ngroups; g++) {
                cx.groups[g].dirty = cx.groups[g].nmem >= 2;
                cx.groups[g].ns = cx.groups[g].nmem;
            }
            continue;
        }
        sm__group_t *gr = &cx.groups[best];
        if (gr->dirty) {
            memcpy(gr->s, gr->mem, (size_t)gr->nmem * sizeof *gr->s);
            gr->ns = gr->nmem;
            sm__eval(&cx, gr->route, gr->s, &gr->ns, 1, &gr->ckey, &gr->cmask, &lo, &hi);
            gr->dirty = 0;
            continue;
        }
        rc = sm__apply(&cx, best);
        if (rc < 0)
            goto out;
        if (rc == 0) {
            gr->dirty = 1;
        } else {
            swept = 0;
            rc = 0;
        }
    }
    for (uint32_t i = 0; i < cx.n; i++) {
        uint32_t id = cx.order[i];
        t->entries[i].key = cx.ekey[id];
        t->entries[i].mask = cx.emask[id];
        t->entries[i].route = cx.eroute[id];
    }
    t->n = cx.n;
    t->indexed = 0;
    *left = cx.n;
    rc = target != 0 && cx.n > target ? SM_ENOFIT : 0;
out:
    sm__cx_free(&cx);
    return rc;
}

int sm_table_compress(sm_table_t *t, const uint32_t *keys_in_use, size_t nkeys, uint32_t target, sm_errbuf_t *eb)
{
    uint32_t *copy = NULL, n0 = t->n, left;
    const uint32_t *keys = keys_in_use;
    size_t i = 1;
    if (nkeys > UINT32_MAX || (nkeys > 0 && !keys_in_use))
        return sm_errorf(eb, SM_EINVAL, "compressing a routing table: %zu keys in use, at most %u", nkeys,
                         UINT32_MAX);
    while (i < nkeys && keys[i - 1] <= keys[i])
        i++;
    if (i < nkeys) {
        if (!(copy = malloc(nkeys * sizeof *copy)))
            return sm_errorf(eb, SM_ENOMEM, "out of memory compressing a routing table of %u entries", n0);
        memcpy(copy, keys_in_use, nkeys * sizeof *copy);
        qsort(copy, nkeys, sizeof *copy, sm__u32_cmp);
        keys = copy;
    }
    int rc = sm__compress(t, keys, (uint32_t)nkeys, target, &left);
    free(copy);
    if (rc == SM_ENOMEM)
        return sm_errorf(eb, SM_ENOMEM, "out of memory compressing a routing table of %u entries", n0);
    if (rc == SM_ENOFIT)
        return sm_errorf(eb, SM_ENOFIT, "%u entries do not compress below %u, the target (ordered covering leaves %u)",
                         n0, target, left);
    return 0;
}

/* Walks the keys of one pass of sm__visits: each key from every router that has an entry for it, along the links of
 * that entry and straight on through routers without one. Counts (fill = 0) or writes (fill = 1) each (tile, key)
 * once into voff / vlist. */
static void sm__walk(const sm_mesh_t *m, uint32_t nk, const uint64_t *koff, const uint32_t *ktile,
                     const uint32_t *kroute, uint32_t *tstamp, uint32_t *tentry, uint64_t *voff, uint32_t *vlist, int fill)
{
    uint32_t tiles = sm_mesh_tiles(m);
    memset(tstamp, 0, (size_t)tiles * sizeof *tstamp);
    memset(tentry, 0, (size_t)tiles * sizeof *tentry);
    for (uint32_t j = 0; j < nk; j++) {
        for (uint64_t e = koff[j]; e < koff[j + 1]; e++)
            tentry[ktile[e]] = j + 1u;
        for (uint64_t e = koff[j]; e < koff[j + 1]; e++) {
            uint32_t t = ktile[e];
            for (int d = -1; d < SM_NDIRS; d++) {
                if (d >= 0 && !(kroute[e] & SM_ROUTE_LINK(d)))
                    continue;
                uint32_t u = d < 0 ? t : sm_mesh_neighbor(m, t, d), steps = 0;
                while (u != UINT32_MAX && steps++ <= m->width + m->height) {
                    if (tstamp[u] != j + 1u) {
                        tstamp[u] = j + 1u;
                        if (fill)
                            vlist[voff[u]++] = j;
                        else
                            voff[u + 1]++;
                    }
                    if (d < 0 || tentry[u] == j + 1u)
                        break; /* the router's own entry takes it on */
                    u = sm_mesh_neighbor(m, u, d);
                }
            }
        }
    }
}

/* For every tile, the keys (indices into the sorted keys) that can arrive there: a key is injected only where it
 * has an entry, and moves on only along an entry's links or straight through routers without one, so walking from
 * every router with an entry for it finds every router it reaches (and perhaps more). Tile t's keys, increasing,
 * are (*vlist)[(*voff)[t] .. (*voff)[t + 1]). Returns 0 or SM_ENOMEM. */
static int sm__visits(const sm_mesh_t *m, const uint32_t *keys, uint32_t nk, uint64_t **voff_out, uint32_t **vlist_out)
{
    uint32_t tiles = sm_mesh_tiles(m);
    uint64_t *koff = calloc((size_t)nk + 2, sizeof *koff), *voff = calloc((size_t)tiles + 1, sizeof *voff);
    uint32_t *stamp = calloc((size_t)nk + 1, sizeof *stamp), *buf = malloc(((size_t)nk + 1) * sizeof *buf);
    uint32_t *tstamp = malloc((size_t)tiles * sizeof *tstamp), *tentry = malloc((size_t)tiles * sizeof *tentry);
    uint32_t *ktile = NULL, *kroute = NULL, *vlist = NULL;
    int rc = SM_ENOMEM;
    *voff_out = NULL;
    *vlist_out = NULL;
    if (!koff || !voff || !stamp || !buf || !tstamp || !tentry)
        goto out;
    /* Each key's first match in every table: counted, then written, by key. */
    for (int fill = 0; fill < 2; fill++) {
        if (fill) {
            for (uint32_t j = 0; j < nk; j++)
                koff[j + 1] += koff[j];
            ktile = malloc((koff[nk] + 1) * sizeof *ktile);
            kroute = malloc((koff[nk] + 1) * sizeof *kroute);
            if (!ktile || !kroute)
                goto out;
            memset(stamp, 0, (size_t)nk * sizeof *stamp);
        }
        for (uint32_t t = 0; t < tiles; t++) {
            const sm_table_t *tb = &m->tables[t];
            for (uint32_t i = 0; i < tb->n; i++) {
                uint32_t nb = 0;
                sm__match(keys, 0, nk, 31, tb->entries[i].key & tb->entries[i].mask, tb->entries[i].mask, buf, &nb);
                for (uint32_t c = 0; c < nb; c++) {
                    uint32_t j = buf[c];
                    if (stamp[j] == t + 1u)
                        continue;
                    stamp[j] = t + 1u;
                    if (fill) {
                        ktile[koff[j]] = t;
                        kroute[koff[j]++] = tb->entries[i].route;
                    } else {
                        koff[j + 1]++;
                    }
                }
            }
        }
    }
    for (uint32_t j = nk; j > 0; j--) /* the fill moved each start to the next key's */
        koff[j] = koff[j - 1];
    koff[0] = 0;
    sm__walk(m, nk, koff, ktile, kroute, tstamp, tentry, voff, NULL, 0);
    for (uint32_t t = 0; t < tiles; t++)
        voff[t + 1] += voff[t];
    if (!(vlist = malloc((voff[tiles] + 1) * sizeof *vlist)))
        goto out;
    sm__walk(m, nk, koff, ktile, kroute, tstamp, tentry, voff, vlist, 1);
    for (uint32_t t = tiles; t > 0; t--)
        voff[t] = voff[t - 1];
    voff[0] = 0;
    *voff_out = voff;
    *vlist_out = vlist;
    voff = NULL;
    vlist = NULL;
    rc = 0;
out:
    free(koff);
    free(voff);
    free(stamp);
    free(buf);
    free(tstamp);
    free(tentry);
    free(ktile);
    free(kroute);
    free(vlist);
    return rc;
}

int sm_mesh_compress(sm_mesh_t *m, const uint32_t *keys_in_use, size_t nkeys, uint32_t target_or_0,
                     uint64_t *before, uint64_t *after, sm_errbuf_t *eb)
{
    uint32_t tiles = sm_mesh_tiles(m), shift = 32, nk = 0;
    uint64_t b = 0, a = 0;
    int rc = 0;
    for (uint32_t t = 0; t < tiles; t++) {
        b += m->tables[t].n;
        for (uint32_t i = 0; i < m->tables[t].n; i++) {
            uint32_t z = sm__ctz(m->tables[t].entries[i].mask);
            if (z < shift)
                shift = z;
        }
    }
    if (before)
        *before = b;
    if (after)
        *after = b;
    if (nkeys > UINT32_MAX || (nkeys > 0 && !keys_in_use))
        return sm_errorf(eb, SM_EINVAL, "compressing routing tables: %zu keys in use, at most %u", nkeys,
                         UINT32_MAX);
    /* Sorted once, and reduced to the bits some entry of some table cares about (each table reduces further). */
    uint32_t *keys = malloc((nkeys ? nkeys : 1) * sizeof *keys), low = shift >= 32 ? ~0u : (1u << shift) - 1u;
    if (!keys)
        return sm_errorf(eb, SM_ENOMEM, "out of memory compressing routing tables");
    for (size_t i = 0; i < nkeys; i++)
        keys[i] = keys_in_use[i] & ~low;
    qsort(keys, nkeys, sizeof *keys, sm__u32_cmp);
    for (size_t i = 0; i < nkeys; i++)
        if (nk == 0 || keys[nk - 1] != keys[i])
            keys[nk++] = keys[i];
    /* Each table needs to keep only the routes of the keys that can arrive at its router. */
    uint64_t *voff = NULL;
    uint32_t *vlist = NULL;
    if (sm__visits(m, keys, nk, &voff, &vlist) != 0) {
        free(keys);
        return sm_errorf(eb, SM_ENOMEM, "out of memory compressing routing tables");
    }
    for (uint32_t t = 0; t < tiles && rc == 0; t++) {
        sm_table_t *tb = &m->tables[t];
        uint32_t n0 = tb->n, left, limit = target_or_0 ? target_or_0 : tb->cap;
        if (target_or_0 != 0 && n0 <= target_or_0)
            continue;
        /* Keys index the sorted keys: pass their values. */
        uint64_t v0 = voff[t], nv = voff[t + 1] - voff[t];
        for (uint64_t v = 0; v < nv; v++)
            vlist[v0 + v] = keys[vlist[v0 + v]];
        rc = sm__compress(tb, vlist + v0, (uint32_t)nv, target_or_0, &left);
        if (rc == 0 && left > limit)
            rc = SM_ENOFIT;
        if (rc == SM_ENOMEM)
            sm_errorf(eb, rc, "out of memory compressing the routing table of router (%u,%u)", t % m->width,
                      t / m->width);
        else if (rc == SM_ENOFIT)
            sm_errorf(eb, rc, "router (%u,%u): %u entries do not compress below %u, its capacity (ordered covering "
                      "leaves %u)", t % m->width, t / m->width, n0, limit, left);
    }
    free(voff);
    free(vlist);
    free(keys);
    for (uint32_t t = 0; t < tiles; t++)
        a += m->tables[t].n;
    if (after)
        *after = a;
    return rc;
}
