/* router/mesh.c: the 2D mesh of tiles, multicast key/mask tables, XY tree construction and packet routing
 * with replication and counters. */
#include <stdlib.h>
#include <string.h>

#include "spikemesh/router.h"

int sm_mesh_init(sm_mesh_t *m, uint32_t width, uint32_t height, uint32_t cores_per_tile, uint32_t table_cap)
{
    memset(m, 0, sizeof *m);
    if (width == 0 || height == 0 || cores_per_tile == 0 || cores_per_tile > SM_TILE_MAX_CORES)
        return SM_EINVAL;
    if ((uint64_t)width * height > (1u << 24))
        return SM_ERANGE;
    size_t tiles = (size_t)width * height;
    m->width = width;
    m->height = height;
    m->cores_per_tile = cores_per_tile;
    m->tables = calloc(tiles, sizeof *m->tables);
    m->link_packets = calloc(tiles * SM_NDIRS, sizeof *m->link_packets);
    m->router_packets = calloc(tiles, sizeof *m->router_packets);
    m->core_packets = calloc(tiles * cores_per_tile, sizeof *m->core_packets);
    m->scratch = calloc(tiles * 3 + (size_t)width * 2, sizeof *m->scratch);
    if (!m->tables || !m->link_packets || !m->router_packets || !m->core_packets || !m->scratch) {
        sm_mesh_free(m);
        return SM_ENOMEM;
    }
    for (size_t t = 0; t < tiles; t++)
        m->tables[t].cap = table_cap;
    return 0;
}

void sm_mesh_free(sm_mesh_t *m)
{
    if (m->tables) {
        for (size_t t = 0; t < (size_t)m->width * m->height; t++) {
            free(m->tables[t].entries);
            free(m->tables[t].masks);
            free(m->tables[t].mstart);
            free(m->tables[t].ikeys);
        }
    }
    free(m->tables);
    free(m->link_packets);
    free(m->router_packets);
    free(m->core_packets);
    free(m->scratch);
    memset(m, 0, sizeof *m);
}

void sm_mesh_clear_counters(sm_mesh_t *m)
{
    size_t tiles = sm_mesh_tiles(m);
    memset(m->link_packets, 0, tiles * SM_NDIRS * sizeof *m->link_packets);
    memset(m->router_packets, 0, tiles * sizeof *m->router_packets);
    memset(m->core_packets, 0, tiles * m->cores_per_tile * sizeof *m->core_packets);
}

void sm_mesh_busiest_link(const sm_mesh_t *m, uint32_t *tile, int *dir, uint64_t *packets)
{
    uint32_t tiles = sm_mesh_tiles(m);
    *tile = 0;
    *dir = -1;
    *packets = 0;
    for (uint32_t t = 0; t < tiles; t++)
        for (int d = 0; d < SM_NDIRS; d++)
            if (m->link_packets[(size_t)t * SM_NDIRS + (uint32_t)d] > *packets) {
                *packets = m->link_packets[(size_t)t * SM_NDIRS + (uint32_t)d];
                *tile = t;
                *dir = d;
            }
}

uint32_t sm_mesh_neighbor(const sm_mesh_t *m, uint32_t t, int d)
{
    uint32_t x = t % m->width, y = t / m->width;
    switch (d) {
    case SM_DIR_E:
        return x + 1 < m->width ? t + 1 : UINT32_MAX;
    case SM_DIR_W:
        return x > 0 ? t - 1 : UINT32_MAX;
    case SM_DIR_N:
        return y + 1 < m->height ? t + m->width : UINT32_MAX;
    case SM_DIR_S:
        return y > 0 ? t - m->width : UINT32_MAX;
    default:
        return UINT32_MAX;
    }
}

/* Direction of the next XY hop from cur towards dst: first along x, then along y; -1 when there. */
static int sm__xy_dir(const sm_mesh_t *m, uint32_t cur, uint32_t dst)
{
    uint32_t cx = cur % m->width, cy = cur / m->width, dx = dst % m->width, dy = dst / m->width;
    if (dx > cx)
        return SM_DIR_E;
    if (dx < cx)
        return SM_DIR_W;
    if (dy > cy)
        return SM_DIR_N;
    if (dy < cy)
        return SM_DIR_S;
    return -1;
}

uint32_t sm_mesh_xy_path(const sm_mesh_t *m, uint32_t src, uint32_t dst, uint32_t *path)
{
    uint32_t hops = 0, cur = src;
    int d;
    while ((d = sm__xy_dir(m, cur, dst)) >= 0) {
        cur = sm_mesh_neighbor(m, cur, d);
        path[hops++] = cur;
    }
    return hops;
}

static int sm__u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Open-addressing hash of a masked key into a group of 2^bits slots. */
static inline uint32_t sm__thash(uint32_t key, uint32_t bits)
{
    return bits ? (uint32_t)((key * 0x9e3779b1u) >> (32u - bits)) : 0u;
}

int sm_table_index(sm_table_t *t)
{
    if (t->indexed)
        return 0;
    free(t->masks);
    free(t->mstart);
    free(t->ikeys);
    t->ikeys = NULL;
    t->masks = malloc(((size_t)t->n + 1) * sizeof *t->masks);
    t->mstart = malloc(((size_t)t->n + 2) * sizeof *t->mstart);
    uint32_t *count = calloc((size_t)t->n + 1, sizeof *count);
    if (!t->masks || !t->mstart || !count) {
        free(count);
        return SM_ENOMEM;
    }
    /* distinct masks, in sorted order */
    for (uint32_t i = 0; i < t->n; i++)
        t->masks[i] = t->entries[i].mask;
    qsort(t->masks, t->n, sizeof *t->masks, sm__u32_cmp);
    uint32_t nm = 0;
    for (uint32_t i = 0; i < t->n; i++)
        if (nm == 0 || t->masks[nm - 1] != t->masks[i])
            t->masks[nm++] = t->masks[i];
    t->nmasks = nm;
    /* one hash group per mask, at least twice as many slots as entries */
    for (uint32_t i = 0; i < t->n; i++) {
        uint32_t lo = 0, hi = nm;
        while (hi - lo > 1) {
            uint32_t mid = (lo + hi) / 2;
            if (t->masks[mid] <= t->entries[i].mask)
                lo = mid;
            else
                hi = mid;
        }
        count[lo]++;
    }
    size_t total = 0;
    for (uint32_t g = 0; g < nm; g++) {
        uint32_t bits = 1;
        while ((1ull << bits) < 2ull * count[g])
            bits++;
        t->mstart[g] = (uint32_t)total;
        count[g] = bits; /* reuse: the group's size in bits */
        total += (size_t)1 << bits;
    }
    t->mstart[nm] = (uint32_t)total;
    t->ikeys = calloc(total ? total : 1, sizeof *t->ikeys);
    if (!t->ikeys || total > UINT32_MAX) {
        free(count);
        return SM_ENOMEM;
    }
    /* insert in table order; the first entry of a masked key wins (first-match semantics) */
    for (uint32_t i = 0; i < t->n; i++) {
        uint32_t g = 0;
        while (t->masks[g] != t->entries[i].mask)
            g++;
        uint32_t bits = count[g], size = 1u << bits, k = t->entries[i].key;
        uint64_t *slot = t->ikeys + t->mstart[g];
        for (uint32_t h = sm__thash(k, bits);; h = (h + 1) & (size - 1)) {
            if (slot[h] == 0) {
                slot[h] = (uint64_t)k << 32 | (i + 1u);
                break;
            }
            if ((uint32_t)(slot[h] >> 32) == k)
                break;
        }
    }
    free(count);
    t->indexed = 1;
    return 0;
}

int sm_table_lookup(const sm_table_t *t, uint32_t key, uint32_t *route)
{
    if (t->indexed) {
        uint32_t best = UINT32_MAX;
        for (uint32_t g = 0; g < t->nmasks; g++) {
            uint32_t k = key & t->masks[g], size = t->mstart[g + 1] - t->mstart[g], bits = 0;
            const uint64_t *slot = t->ikeys + t->mstart[g];
            while ((1u << bits) < size)
                bits++;
            for (uint32_t h = sm__thash(k, bits); slot[h] != 0; h = (h + 1) & (size - 1)) {
                if ((uint32_t)(slot[h] >> 32) == k) {
                    if ((uint32_t)slot[h] - 1u < best)
                        best = (uint32_t)slot[h] - 1u;
                    break;
                }
            }
        }
        if (best == UINT32_MAX)
            return 0;
        *route = t->entries[best].route;
        return 1;
    }
    for (uint32_t i = 0; i < t->n; i++) {
        if ((key & t->entries[i].mask) == t->entries[i].key) {
            *route = t->entries[i].route;
            return 1;
        }
    }
    return 0;
}

static int sm__table_add(sm_table_t *t, uint32_t key, uint32_t mask, uint32_t route)
{
    if (t->n >= t->cap)
        return SM_ENOFIT;
    if ((t->n & (t->n - 1)) == 0) { /* grow at powers of two */
        uint32_t want = t->n ? t->n * 2 : 4;
        if (want > t->cap)
            want = t->cap;
        sm_route_entry_t *e = realloc(t->entries, (size_t)want * sizeof *e);
        if (!e)
            return SM_ENOMEM;
        t->entries = e;
    }
    t->entries[t->n].key = key & mask;
    t->entries[t->n].mask = mask;
    t->entries[t->n].route = route;
    t->n++;
    t->indexed = 0;
    return 0;
}

int sm_mesh_add_tree(sm_mesh_t *m, uint32_t src, uint32_t key, uint32_t mask, const uint32_t *dst_cores,
                     uint32_t ndst, uint64_t *tree, uint32_t *ntree, sm_errbuf_t *eb)
{
    uint32_t tiles = sm_mesh_tiles(m), W = m->width;
    /* scratch: route word and arrival direction + 1 per tile, the tree's tiles in visiting order, and per
     * column the lowest and highest destination row (+ 1; 0: none). All zero between calls. */
    uint32_t *route = m->scratch, *indir = route + tiles, *order = indir + tiles;
    uint32_t *ylo = order + tiles, *yhi = ylo + W;
    uint32_t sx = src % W, sy = src / W, xmin = sx, xmax = sx;
    int rc = 0;
    if (src >= tiles)
        return sm_errorf(eb, SM_EINVAL, "source tile %u is outside the %ux%u mesh", src, W, m->height);
    for (uint32_t k = 0; k < ndst; k++) {
        uint32_t t = dst_cores[k] / m->cores_per_tile, slot = dst_cores[k] % m->cores_per_tile;
        if (t >= tiles) {
            rc = sm_errorf(eb, SM_EINVAL, "destination core %u is outside the mesh", dst_cores[k]);
            break;
        }
        uint32_t x = t % W, y = t / W;
        route[t] |= SM_ROUTE_CORE(slot);
        if (yhi[x] == 0 || y + 1 < ylo[x])
            ylo[x] = y + 1;
        if (y + 1 > yhi[x])
            yhi[x] = y + 1;
        if (x < xmin)
            xmin = x;
        if (x > xmax)
            xmax = x;
    }
    if (rc == 0) {
        /* XY trees: along the source row first, then up and down each column that holds destinations. */
        for (uint32_t x = xmin; x <= xmax; x++) {
            uint32_t t = sy * W + x;
            if (x > sx) {
                indir[t] = SM_DIR_E + 1u;
                if (x < xmax)
                    route[t] |= SM_ROUTE_LINK(SM_DIR_E);
            } else if (x < sx) {
                indir[t] = SM_DIR_W + 1u;
                if (x > xmin)
                    route[t] |= SM_ROUTE_LINK(SM_DIR_W);
            } else {
                if (xmax > sx)
                    route[t] |= SM_ROUTE_LINK(SM_DIR_E);
                if (xmin < sx)
                    route[t] |= SM_ROUTE_LINK(SM_DIR_W);
            }
            if (yhi[x] == 0)
                continue;
            if (yhi[x] - 1 > sy) {
                route[t] |= SM_ROUTE_LINK(SM_DIR_N);
                for (uint32_t y = sy + 1; y < yhi[x]; y++) {
                    indir[y * W + x] = SM_DIR_N + 1u;
                    if (y + 1 < yhi[x])
                        route[y * W + x] |= SM_ROUTE_LINK(SM_DIR_N);
                }
            }
            if (ylo[x] - 1 < sy) {
                route[t] |= SM_ROUTE_LINK(SM_DIR_S);
                for (uint32_t y = sy; y-- > ylo[x] - 1;) {
                    indir[y * W + x] = SM_DIR_S + 1u;
                    if (y > ylo[x] - 1)
                        route[y * W + x] |= SM_ROUTE_LINK(SM_DIR_S);
                }
            }
        }
    }
    /* Walk the tree from the source (a fixed order) to add one entry per router that branches or delivers. */
    uint32_t n = 0, head = 0;
    if (rc == 0)
        order[n++] = src;
    while (head < n) {
        uint32_t t = order[head++], r = route[t];
        int straight = t != src && r == SM_ROUTE_LINK(indir[t] - 1u);
        if (!straight && rc == 0) {
            rc = sm__table_add(&m->tables[t], key, mask, r);
            if (rc == SM_ENOFIT)
                sm_errorf(eb, SM_ENOFIT, "router (%u,%u) needs more than %u routing table entries (its capacity)",
                          t % W, t / W, m->tables[t].cap);
            else if (rc == SM_ENOMEM)
                sm_errorf(eb, SM_ENOMEM, "out of memory for routing tables");
        }
        for (int d = 0; d < SM_NDIRS; d++)
            if (r & SM_ROUTE_LINK(d))
                order[n++] = sm_mesh_neighbor(m, t, d);
    }
    if (tree)
        for (uint32_t i = 0; i < n; i++)
            tree[i] = (uint64_t)order[i] << 32 | route[order[i]];
    if (ntree)
        *ntree = n;
    /* Clear the scratch: the tree's tiles, destination tiles off the tree (only on error) and the columns. */
    for (uint32_t i = 0; i < n; i++)
        route[order[i]] = indir[order[i]] = 0;
    for (uint32_t k = 0; k < ndst; k++) {
        uint32_t t = dst_cores[k] / m->cores_per_tile;
        if (t < tiles) {
            route[t] = indir[t] = 0;
            ylo[t % W] = yhi[t % W] = 0;
        }
    }
    return rc;
}

void sm_mesh_count_tree(sm_mesh_t *m, const uint64_t *tree, uint32_t n, uint64_t count)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t t = (uint32_t)(tree[i] >> 32), r = (uint32_t)tree[i];
        m->router_packets[t] += count;
        for (uint32_t d = 0; d < SM_NDIRS; d++)
            if (r & SM_ROUTE_LINK(d))
                m->link_packets[(size_t)t * SM_NDIRS + d] += count;
        for (uint32_t c = 0; c < m->cores_per_tile; c++)
            if (r & SM_ROUTE_CORE(c))
                m->core_packets[(size_t)t * m->cores_per_tile + c] += count;
    }
}

int sm_mesh_route(sm_mesh_t *m, uint32_t src, uint32_t key, uint64_t count, uint32_t *dst, uint32_t *ndst,
                  uint64_t *hops, sm_errbuf_t *eb)
{
    uint32_t tiles = sm_mesh_tiles(m);
    uint64_t h = 0;
    uint32_t nd = 0, visits = 0;
    if (src >= tiles)
        return sm_errorf(eb, SM_EINVAL, "source tile %u is outside the %ux%u mesh", src, m->width, m->height);
    /* Stack entries: tile * 8 + (direction of travel + 1), 0 for the injecting router. */
    uint64_t *stack = malloc(((size_t)tiles * SM_NDIRS * SM_NDIRS + 1) * sizeof *stack);
    if (!stack)
        return SM_ENOMEM;
    size_t sn = 0;
    int rc = 0;
    stack[sn++] = (uint64_t)src * 8u;
    while (sn > 0 && rc == 0) {
        uint64_t top = stack[--sn];
        uint32_t t = (uint32_t)(top / 8u), from = (uint32_t)(top % 8u);
        uint32_t r;
        if (++visits > tiles * SM_NDIRS) {
            rc = sm_errorf(eb, SM_EROUTE, "key 0x%08x loops in the mesh", key);
            break;
        }
        m->router_packets[t] += count;
        if (!m->tables[t].indexed && m->tables[t].n > 8 && sm_table_index(&m->tables[t]) != 0) {
            rc = sm_errorf(eb, SM_ENOMEM, "out of memory indexing the table of router (%u,%u)", t % m->width,
                           t / m->width);
            break;
        }
        if (!sm_table_lookup(&m->tables[t], key, &r)) {
            if (from == 0) {
                rc = sm_errorf(eb, SM_EROUTE, "router (%u,%u) has no entry for key 0x%08x injected there",
                               t % m->width, t / m->width, key);
                break;
            }
            r = SM_ROUTE_LINK(from - 1u); /* default routing: straight on */
        }
        for (uint32_t c = 0; c < m->cores_per_tile; c++) {
            if (r & SM_ROUTE_CORE(c)) {
                m->core_packets[t * m->cores_per_tile + c] += count;
                if (dst)
                    dst[nd] = t * m->cores_per_tile + c;
                nd++;
            }
        }
        for (int d = SM_NDIRS - 1; d >= 0; d--) {
            if (!(r & SM_ROUTE_LINK(d)))
                continue;
            uint32_t nb = sm_mesh_neighbor(m, t, d);
            if (nb == UINT32_MAX) {
                rc = sm_errorf(eb, SM_EROUTE, "key 0x%08x leaves the mesh at router (%u,%u)", key,
                               t % m->width, t / m->width);
                break;
            }
            m->link_packets[(size_t)t * SM_NDIRS + (uint32_t)d] += count;
            h++;
            stack[sn++] = (uint64_t)nb * 8u + (uint64_t)d + 1u;
        }
    }
    free(stack);
    if (ndst)
        *ndst = nd;
    if (hops)
        *hops = h;
    return rc;
}
