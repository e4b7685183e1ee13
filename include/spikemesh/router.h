/* spikemesh/router.h: the mesh network-on-chip: tiles with a router each, multicast key/mask routing tables,
 * dimension-order (XY) routing with replication where the tree branches, per-link and per-router counters. */
#ifndef SPIKEMESH_ROUTER_H
#define SPIKEMESH_ROUTER_H

#include <stdint.h>

#include "spikemesh/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Output directions of a router. A route word has one bit per link (bits 0..3) and one bit per local core
 * (bits 4..31), so a tile holds at most 28 cores. */
enum { SM_DIR_E = 0, SM_DIR_N = 1, SM_DIR_W = 2, SM_DIR_S = 3, SM_NDIRS = 4 };
#define SM_ROUTE_LINK(d) (1u << (d))
#define SM_ROUTE_CORE(c) (1u << (4u + (c)))
#define SM_ROUTE_LINKS 0xfu
#define SM_TILE_MAX_CORES 28u

/* A spike packet: routing key, source core, timestep and an optional payload (learning signals). */
typedef struct {
    uint32_t key;
    uint32_t src_core;
    uint64_t step;
    int32_t payload;
    uint8_t has_payload;
} sm_packet_t;

/* One multicast entry: a packet whose key k satisfies (k & mask) == key goes to every output in route. */
typedef struct {
    uint32_t key;
    uint32_t mask;
    uint32_t route;
} sm_route_entry_t;

/* A router's table, searched in order (the first match wins), with the chip's capacity. */
typedef struct {
    sm_route_entry_t *entries;
    uint32_t n;
    uint32_t cap;
    /* lookup index (sm_table_index): one open-addressing hash per distinct mask */
    int indexed;
    uint32_t nmasks;
    uint32_t *masks;  /* [nmasks], increasing */
    uint32_t *mstart; /* [nmasks + 1]: each mask's slots in ikeys (a power of two each) */
    uint64_t *ikeys;  /* slots: key << 32 | (first entry position + 1), 0 when empty */
} sm_table_t;

/* A width x height mesh; tile (x, y) has index y * width + x, y grows northwards. Counters are totals. */
typedef struct {
    uint32_t width, height, cores_per_tile;
    sm_table_t *tables;       /* one per tile */
    uint64_t *link_packets;   /* [tile * 4 + dir]: packets sent from tile towards dir */
    uint64_t *router_packets; /* packets handled by each router (injected or arriving on a link) */
    uint64_t *core_packets;   /* packets delivered to each core (tile * cores_per_tile + slot) */
    uint32_t *scratch;        /* per-tile working space for tree building */
} sm_mesh_t;

/* Allocates a mesh with empty tables of capacity table_cap. Returns 0 or SM_ENOMEM / SM_EINVAL. */
int sm_mesh_init(sm_mesh_t *m, uint32_t width, uint32_t height, uint32_t cores_per_tile, uint32_t table_cap);
void sm_mesh_free(sm_mesh_t *m);
void sm_mesh_clear_counters(sm_mesh_t *m);

static inline uint32_t sm_mesh_tiles(const sm_mesh_t *m) { return m->width * m->height; }

/* The link with the most packets (the first in tile, direction order on ties); *dir = -1 when no packet
 * crossed any link. */
void sm_mesh_busiest_link(const sm_mesh_t *m, uint32_t *tile, int *dir, uint64_t *packets);

/* Neighbour of tile t in direction d, or UINT32_MAX at the mesh edge. */
uint32_t sm_mesh_neighbor(const sm_mesh_t *m, uint32_t t, int d);

/* XY route from tile src to tile dst: writes the tiles visited after src into path (at most width + height
 * entries) and returns the hop count. */
uint32_t sm_mesh_xy_path(const sm_mesh_t *m, uint32_t src, uint32_t dst, uint32_t *path);

/* First matching entry of a table: returns 1 and sets *route, or 0 when no entry matches. Uses the index
 * when the table has one (a hash probe per distinct mask), else scans in order; both give the same
 * answer. */
int sm_table_lookup(const sm_table_t *t, uint32_t key, uint32_t *route);
/* Builds the lookup index of a table (adding an entry drops it). Returns 0 or SM_ENOMEM. */
int sm_table_index(sm_table_t *t);

/* Adds the multicast tree of one key range (key, mask) from tile src to the given destination cores
 * (global core indices, tile * cores_per_tile + slot) along XY routes. A router the tree only passes
 * straight through gets no entry (default routing). The tree itself, one word per router on it
 * (tile << 32 | route word, the root first), goes to tree (when not NULL: room for every tile) and the
 * number of its routers to *ntree (its links: one fewer). On a full table: SM_ENOFIT, with the router, the
 * entry count and the capacity in eb. */
int sm_mesh_add_tree(sm_mesh_t *m, uint32_t src, uint32_t key, uint32_t mask, const uint32_t *dst_cores,
                     uint32_t ndst, uint64_t *tree, uint32_t *ntree, sm_errbuf_t *eb);

/* Adds `count` packets along a tree recorded by sm_mesh_add_tree to the router, link and core counters:
 * the same counts as routing them through the tables, without the lookups. */
void sm_mesh_count_tree(sm_mesh_t *m, const uint64_t *tree, uint32_t n, uint64_t count);

/* Routes `count` identical packets with routing key `key` injected at tile src through the tables,
 * replicating where the tree branches, and adds count to every link, router and core counter it touches
 * (count 0 walks without counting). Delivered cores are written to dst (when not NULL, room for every core
 * of the mesh) and their number to *ndst; link traversals of one packet to *hops. A packet that finds no
 * entry where it was injected, or that runs off the mesh edge, gives SM_EROUTE. */
int sm_mesh_route(sm_mesh_t *m, uint32_t src, uint32_t key, uint64_t count, uint32_t *dst, uint32_t *ndst,
                  uint64_t *hops, sm_errbuf_t *eb);

#ifdef __cplusplus
}
#endif
#endif
