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
    uint32_t chip_w, chip_h;  /* a board: tiles of one chip (0: the mesh is one chip); links between chips are
                               * inter-chip links */
} sm_mesh_t;

/* Allocates a mesh with empty tables of capacity table_cap. Returns 0 or SM_ENOMEM / SM_EINVAL. */
int sm_mesh_init(sm_mesh_t *m, uint32_t width, uint32_t height, uint32_t cores_per_tile, uint32_t table_cap);
void sm_mesh_free(sm_mesh_t *m);
void sm_mesh_clear_counters(sm_mesh_t *m);

static inline uint32_t sm_mesh_tiles(const sm_mesh_t *m) { return m->width * m->height; }

/* The link with the most packets (the first in tile, direction order on ties); *dir = -1 when no packet
 * crossed any link. */
void sm_mesh_busiest_link(const sm_mesh_t *m, uint32_t *tile, int *dir, uint64_t *packets);

/* 1 when the link from tile t towards d joins two chips of a board. */
static inline int sm_mesh_link_is_inter(const sm_mesh_t *m, uint32_t t, int d)
{
    if (!m->chip_w)
        return 0;
    uint32_t x = t % m->width, y = t / m->width;
    switch (d) {
    case SM_DIR_E: return (x + 1) % m->chip_w == 0;
    case SM_DIR_W: return x % m->chip_w == 0;
    case SM_DIR_N: return (y + 1) % m->chip_h == 0;
    default: return y % m->chip_h == 0;
    }
}

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

/* ---- table compression (router/compress.c) ---- */

/* Compresses a table in place by ordered covering (Mundy et al. 2016): entries with the same route merge into one
 * key/mask cover (bits where their keys differ become don't-care), each cover placed in the table's order so that
 * first-match lookups keep their answer, until the table holds at most `target` entries (0: as few as it gets).
 * keys_in_use (nkeys of them, any order, repeats allowed) are the keys whose lookup must not change: every key in
 * use that can arrive at this router. Each of them finds the same route afterwards, and one that matched no entry
 * (default routing: straight on) still matches none; any other key may find any route, so compress only once
 * every entry is in, and add no entry for another key after. Entries that no key in use resolves to are dropped.
 * The table's index is dropped (indexed = 0).
 * Returns 0; SM_ENOFIT with "N entries do not compress below M, the target (ordered covering leaves K)" (the
 * table keeps those K entries, still correct); SM_EINVAL; or SM_ENOMEM (the table unchanged). */
int sm_table_compress(sm_table_t *t, const uint32_t *keys_in_use, size_t nkeys, uint32_t target, sm_errbuf_t *eb);

/* Compresses the table of every router of m: with target_or_0 > 0, each table above it until it fits (a table at or
 * below it is left alone); with 0, every table as far as it goes, then each must fit its own cap. keys_in_use:
 * every key a source may inject (for a piece with destinations, key .. key + count - 1), in any order. The route
 * of each of them from the router where it is injected is unchanged: the same routers, links and cores. Each table
 * keeps the lookups of the keys in use that can arrive at its router, found by walking every key from each router
 * with an entry for it, along the entry's links and straight through routers without one. Total entries before
 * and after go to *before and *after (either may be NULL). Returns 0, SM_EINVAL, SM_ENOMEM, or SM_ENOFIT with
 * "router (x,y): N entries do not compress below M, its capacity (ordered covering leaves K)" for the first
 * router that cannot fit (tables before it are compressed, every one still correct). */
int sm_mesh_compress(sm_mesh_t *m, const uint32_t *keys_in_use, size_t nkeys, uint32_t target_or_0,
                     uint64_t *before, uint64_t *after, sm_errbuf_t *eb);

/* ---- cycle-level network-on-chip model (router/noc.c) ---- */

typedef enum {
    SM_NOC_IQ = 0,    /* input-queued: finite input buffers, round-robin output arbitration, backpressure */
    SM_NOC_IDEAL = 1  /* output-queued with unbounded buffers: only link bandwidth limits throughput */
} sm_noc_kind_t;

/* Router and link parameters, in router cycles and flits. */
typedef struct {
    sm_noc_kind_t kind;
    uint32_t buffer_depth;   /* packets per input buffer (iq) */
    uint32_t packet_flits;   /* flits per packet */
    uint32_t link_flits;     /* flits a link carries per cycle */
    uint32_t hop_cycles_ew;  /* cycles from a grant at one router to the head being ready at the next, east-west */
    uint32_t hop_cycles_ns;  /* the same, north-south */
    uint64_t drop_after;     /* a packet blocked this many cycles is dropped (0: never) */
    int reinject;            /* 1: a dropped packet goes back into its router's injection queue */
    uint32_t chip_hop_cycles; /* boards: the same for a link between chips */
    uint32_t chip_link_flits; /* boards: flits an inter-chip link carries per cycle */
} sm_noc_params_t;

/* Counters of one output port (links 0..3, ejection 4) of one router. */
typedef struct {
    uint64_t packets, flits, busy_cycles, stall_cycles, drops;
} sm_noc_port_t;

typedef struct sm_noc sm_noc_t;

/* A cycle-level model of the mesh m (which supplies size and, for multicast keys, the routing tables).
 * Returns 0, SM_EINVAL on bad parameters (with a message) or SM_ENOMEM. */
int sm_noc_create(sm_noc_t **out, sm_mesh_t *m, const sm_noc_params_t *p, sm_errbuf_t *eb);
void sm_noc_destroy(sm_noc_t *n);

/* Injects a unicast packet at tile src for tile dst, or a multicast packet with routing key `key`
 * (dst = UINT32_MAX), at the current cycle. `tag` is returned with its deliveries. */
int sm_noc_inject(sm_noc_t *n, uint32_t src, uint32_t dst, uint32_t key, uint64_t tag);
/* The same with the number of destination cores of a multicast packet given (it counts in `sent`),
 * which saves walking its tree. */
int sm_noc_inject_copies(sm_noc_t *n, uint32_t src, uint32_t dst, uint32_t key, uint64_t tag, uint64_t copies);

/* Injects a multicast packet that follows a tree recorded by sm_mesh_add_tree (routes from the record, no table
 * lookups), at the tree's root; child0 from sm_noc_tree_children; copies: its destination cores. */
int sm_noc_inject_tree(sm_noc_t *n, const uint64_t *tree, const uint32_t *child0, uint64_t tag, uint64_t copies);
/* For a recorded tree of n routers (breadth-first, each router's children in direction order): the index of each
 * router's first child. */
void sm_noc_tree_children(const uint64_t *tree, uint32_t n, uint32_t *child0);

/* Delivery callback: a packet (tag) reached `ncores` cores of tile `tile` after `latency` cycles, having
 * crossed `hops` links. */
typedef void (*sm_noc_deliver_cb)(void *ctx, uint64_t tag, uint32_t tile, uint32_t ncores, uint64_t latency,
                                  uint32_t hops);
void sm_noc_on_deliver(sm_noc_t *n, sm_noc_deliver_cb cb, void *ctx);

/* Advances one cycle: arbitration, link transfers, ejection, drops. */
void sm_noc_cycle(sm_noc_t *n);
/* Cycles until every packet in flight is delivered or dropped, at most max_cycles; returns cycles run. */
uint64_t sm_noc_drain(sm_noc_t *n, uint64_t max_cycles);

uint64_t sm_noc_now(const sm_noc_t *n);
uint64_t sm_noc_in_flight(const sm_noc_t *n);
/* The cycle at which the last delivery so far completed (its tail left the ejection port). */
uint64_t sm_noc_last_delivery(const sm_noc_t *n);

/* Totals: destination copies injected (sent), delivered, dropped; link traversals; re-injections. */
typedef struct {
    uint64_t sent, delivered, dropped, link_traversals, reinjected, packets_injected;
} sm_noc_totals_t;
sm_noc_totals_t sm_noc_totals(const sm_noc_t *n);
/* Port counters of router t (5 ports: E, N, W, S, eject) and its peak input-queue occupancy. */
const sm_noc_port_t *sm_noc_ports(const sm_noc_t *n, uint32_t t);
uint32_t sm_noc_peak_queue(const sm_noc_t *n, uint32_t t);

/* Synthetic traffic as in BookSim2: every tile injects Bernoulli(rate) unicast packets per cycle. */
typedef enum {
    SM_PAT_UNIFORM, SM_PAT_TRANSPOSE, SM_PAT_BITCOMP, SM_PAT_TORNADO, SM_PAT_HOTSPOT, SM_PAT_NEIGHBOR
} sm_pattern_t;

int sm_pattern_parse(const char *name, sm_pattern_t *p);
const char *sm_pattern_name(sm_pattern_t p);
/* Destination tile of a packet from src under pattern p on a w x h mesh; r is a uniform 32-bit draw.
 * Returns UINT32_MAX when the pattern maps src to itself (such tiles do not inject). */
uint32_t sm_pattern_dest(sm_pattern_t p, uint32_t w, uint32_t h, uint32_t src, uint32_t r);

typedef struct {
    double offered;        /* packets per node per cycle */
    double accepted;       /* delivered per injecting node per cycle in the measurement window */
    double mean_latency;   /* cycles, over packets created in the window */
    double p99_latency;
    double mean_hops;
    double zero_load_latency; /* cycles: the mean of hops x hop cycles + serialization over the same packets */
    uint64_t measured;     /* packets created in the window */
    uint64_t unfinished;   /* of those, not delivered when the run ended */
    uint64_t packet_hops;  /* link traversals simulated */
    uint64_t in_flight;    /* packets still queued when the final drain (at most 20 x cycles) stopped: a mesh
                            * driven far past saturation holds a long backlog */
    double backlog_growth; /* packets queued at the window's end less those at its start */
    int saturated;         /* did not drain, accepts less than offered, backlog grows, or latency 5x zero-load */
    sm_noc_totals_t totals;
} sm_traffic_result_t;

/* Runs `cycles` cycles of traffic (the first fifth is warm-up), then keeps injecting while the window's
 * packets drain (at most 4 x cycles more). latencies (optional) receives the window's latencies, malloc'd. */
int sm_traffic_run(uint32_t w, uint32_t h, const sm_noc_params_t *p, sm_pattern_t pat, double rate,
                   uint64_t cycles, uint64_t seed, sm_traffic_result_t *res, uint64_t **latencies,
                   uint64_t *nlat, sm_errbuf_t *eb);

#ifdef __cplusplus
}
#endif
#endif
