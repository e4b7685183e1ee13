/* spikemesh/loader.h: network and chip descriptions (JSON files and built-ins), their validation, and the
 * deployment built from them: connectivity, partitioning onto cores, routing keys and routing tables. */
#ifndef SPIKEMESH_LOADER_H
#define SPIKEMESH_LOADER_H

#include <stdint.h>

#include "spikemesh/common.h"
#include "spikemesh/core.h"
#include "spikemesh/router.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SM_NAME_MAX 64

typedef enum { SM_MODEL_LIF = 0, SM_MODEL_POISSON = 1, SM_MODEL_SPIKE_SOURCE = 2 } sm_model_t;

typedef struct {
    char name[SM_NAME_MAX];
    uint32_t size;       /* neurons */
    sm_model_t model;
    sm_lif_params_t lif; /* model "lif" */
    double rate_hz;      /* model "poisson": Hz */
    double v_init_lo;    /* mV: initial v drawn uniformly in [lo, hi] (lo == hi: constant) */
    double v_init_hi;    /* mV */
    uint32_t first;      /* global id of its first neuron (populations are numbered in order) */
    double *drive;       /* model "lif": NULL, or [size] mV, a constant drive per neuron (see sm_lif_params_t) */
    sm_input_spike_t *spikes; /* model "spike_source": the spikes it replays, by step then neuron (local index) */
    uint64_t nspikes;
} sm_pop_t;

typedef enum {
    SM_CONN_BERNOULLI = 0, SM_CONN_ALL = 1, SM_CONN_ONE = 2, SM_CONN_LIST = 3, SM_CONN_BLOCKS = 4
} sm_conn_rule_t;

typedef struct {
    uint32_t pre, post;   /* population indices */
    uint8_t inhibitory;   /* 1: the weight adds to gi, 0: to ge */
    uint8_t autapses;     /* 1: a neuron may connect to itself when pre == post */
    sm_conn_rule_t rule;
    double p;             /* bernoulli: connection probability; blocks: within a block */
    uint32_t blocks;      /* blocks: pre and post are each cut into this many equal consecutive blocks */
    double p_next;        /* blocks: probability towards the next block (the last block's next is the first) */
    double p_out;         /* blocks: probability towards any other block */
    double weight;        /* mV, every synapse unless weights[] is given */
    uint32_t delay_steps; /* >= 1 */
    uint64_t npairs;      /* list: (pre, post) local indices */
    uint32_t *pairs;      /* list: 2 * npairs */
    float *weights;       /* list: npairs weights in mV, or NULL */
} sm_proj_t;

typedef struct {
    char name[128];
    double dt;            /* ms */
    uint32_t npops, nprojs;
    sm_pop_t *pops;
    sm_proj_t *projs;
    uint32_t n;           /* neurons in all */
    double duration;      /* ms: the default run length (0: not given) */
} sm_net_t;

void sm_net_free(sm_net_t *net);

/* Parses a network description from a JSON file; every error is "file:line:column: rule broken". */
int sm_net_load(const char *path, sm_net_t *net, sm_errbuf_t *eb);
/* The same from a string; `name` stands for the file in messages. */
int sm_net_parse(const char *text, size_t len, const char *name, sm_net_t *net, sm_errbuf_t *eb);
/* Built-in networks: "cuba" (4000 neurons) or "cuba:N". Returns SM_ENOENT when spec names none. */
int sm_net_builtin(const char *spec, sm_net_t *net, sm_errbuf_t *eb);
/* Imports a NIR graph (HDF5, docs/nir.md) for a step of dt_ms: Input nodes become spike_source populations
 * (first, in name order), neuron nodes lif populations, weight and delay nodes list projections. Returns 0, or a
 * negative code with "file: HDF5 path: rule broken" (an unsupported node is named with its type). */
int sm_net_load_nir(const char *path, double dt_ms, sm_net_t *net, sm_errbuf_t *eb);
/* 1 once libhdf5 has crashed on a damaged file in this process (sm_net_load_nir caught it and returned an
 * error): libhdf5's state is then broken and its own clean-up at exit may crash too, so end the process with
 * _exit (after fflush) rather than exit. */
int sm_net_nir_broken(void);
/* Reads the spikes of the network's spike_source populations from a "step,neuron" CSV file (docs/nir.md):
 * neuron indexes the spike_source neurons, population after population. Replaces any spikes they had. When
 * net->duration is set (> 0), spikes at or past its last step are checked but not kept. Returns 0, or a negative
 * code with "file:line: rule broken" (net is then unchanged). */
int sm_net_load_input(sm_net_t *net, const char *path, sm_errbuf_t *eb);
/* The model's name as the network format spells it: "lif", "li" (a lif that never spikes), "poisson",
 * "spike_source". */
const char *sm_pop_model_name(const sm_pop_t *pop);

/* Time and energy of each operation, for the per-step time and energy model. */
typedef struct {
    double neuron_active_pj, neuron_active_ns; /* a neuron update with input or a spike */
    double neuron_idle_pj, neuron_idle_ns;     /* a neuron update without */
    double syn_op_pj, syn_op_ns;               /* one synaptic event applied */
    double syn_update_pj, syn_update_ns;       /* one synaptic weight update (learning) */
    double spike_tile_pj, spike_tile_ns;       /* a packet delivered to a core within its tile */
    double hop_ew_pj, hop_ew_ns;               /* a packet crossing an east-west link */
    double hop_ns_pj, hop_ns_ns;               /* a packet crossing a north-south link */
    double hop_chip_pj, hop_chip_ns;           /* a packet crossing a link between two chips of a board */
    double barrier_ns, barrier_hop_ns;         /* end-of-step barrier: barrier_ns + barrier_hop_ns x mesh diameter */
    double static_w;                           /* static power of the chip, W (0: not modelled) */
    double cycle_ns;                           /* router clock period of the cycle-level model */
} sm_costs_t;

/* A chip: a width x height mesh of tiles, each with cores_per_tile cores and a router. */
typedef struct {
    char name[SM_NAME_MAX];
    uint32_t width, height;       /* tiles */
    uint32_t cores_per_tile;
    uint32_t max_neurons;         /* per core */
    uint64_t synapse_memory;      /* bytes per core */
    uint32_t synapse_bytes;       /* bytes charged per synapse */
    uint32_t max_fan_in;          /* distinct presynaptic neurons per core */
    uint32_t max_fan_out;         /* distinct (neuron, destination core) pairs per core */
    uint32_t table_entries;       /* routing table capacity per router */
    uint32_t max_delay_steps;     /* longest synaptic delay a core's ring buffer holds */
    sm_noc_params_t noc;          /* the routers and links of the cycle-level mesh model */
    sm_costs_t costs;             /* per-operation time and energy */
    uint32_t chips_x, chips_y;    /* a board of chips_x x chips_y chips (1 x 1: one chip); width and height above
                                   * are the whole board's tiles */
} sm_chip_t;

/* "loihi", "small", either with ":WxH" to resize the mesh, or a chip JSON file. */
int sm_chip_resolve(const char *spec, sm_chip_t *chip, sm_errbuf_t *eb);
int sm_chip_load(const char *path, sm_chip_t *chip, sm_errbuf_t *eb);
/* The same from a string; `name` stands for the file in messages. */
int sm_chip_parse(const char *text, size_t len, const char *name, sm_chip_t *chip, sm_errbuf_t *eb);
/* Names and one-line descriptions of the built-in presets; returns how many. */
uint32_t sm_chip_presets(const char *const **names, const char *const **about);
int sm_chip_preset(const char *name, sm_chip_t *chip);

/* Placers: how cores are put on the mesh. */
typedef enum {
    SM_PLACE_ORDER = 0,  /* core c on chip core c: tiles filled in order */
    SM_PLACE_GREEDY = 1, /* breadth-first over the core graph, each core next to the cores it talks to */
    SM_PLACE_BISECT = 2  /* recursive bisection of the core graph (METIS) along the mesh */
} sm_placer_t;
int sm_placer_parse(const char *name, sm_placer_t *p);
const char *sm_placer_name(sm_placer_t p);

/* A population piece: the neurons of one population placed on one core; one routing key range. */
typedef struct {
    uint32_t core;  /* index into sm_deploy_t.cores */
    uint32_t pop;
    uint32_t first; /* global neuron id */
    uint32_t count;
    uint32_t key;   /* routing key of its first neuron; neuron id -> key + (id - first) */
    uint32_t mask;
    uint32_t ndest; /* destination cores of its multicast tree */
    uint32_t hops;  /* link traversals of one packet */
} sm_piece_t;

/* The deployment: everything the runtime needs, built once from a network and a chip. */
typedef struct {
    const sm_net_t *net;
    sm_chip_t chip;
    uint64_t seed;
    uint32_t n;           /* neurons */
    uint64_t nsyn;        /* synapses */
    uint64_t *row;        /* [n + 1]: synapses of neuron i are syn[row[i] .. row[i+1]), by postsynaptic id */
    sm_syn_t *syn;
    uint32_t max_delay;   /* steps */
    uint32_t ncores;      /* cores used */
    sm_core_t *cores;     /* [ncores], placed in order: core c sits at chip core index c */
    uint32_t npieces;
    sm_piece_t *pieces;   /* in neuron order */
    uint32_t *piece_of;   /* [n]: piece of each neuron */
    uint32_t key_bits;    /* low key bits that index a neuron within its piece */
    sm_mesh_t mesh;       /* routing tables filled */
    uint64_t *trees;      /* each piece's multicast tree as recorded by sm_mesh_add_tree */
    uint64_t *tree_off;   /* [npieces + 1]: piece q's tree is trees[tree_off[q] .. tree_off[q+1]) */
    sm_placer_t placer;   /* how the cores were placed */
    double est_hops_order;  /* packets x hops over core pairs, one spike per neuron, with cores in order */
    double est_hops;        /* the same for the placement used */
    uint32_t fanout_rounds; /* partitions tried until every core met the fan-out limit */
    int compress_all;     /* set before building (sm_deploy_opts_t.compress_all): minimise every table */
    uint64_t table_entries_uncompressed; /* entries in all routers before compression */
    uint32_t max_table_uncompressed;
    uint64_t table_entries; /* entries in all routers */
    uint32_t max_table;   /* fullest router's entries */
} sm_deploy_t;


/* A placement as read from a placement file: the partition (first neuron and count of every core) and where
 * each core sits. */
typedef struct {
    uint32_t ncores;
    uint32_t *first, *count, *tile, *slot;
    char chip[SM_NAME_MAX];
    uint32_t width, height, cores_per_tile;
    sm_placer_t placer; /* the placer that made it (the file's "placer"; order when absent) */
} sm_placement_t;
void sm_placement_free(sm_placement_t *p);

typedef struct {
    sm_placer_t placer;
    const sm_placement_t *placement; /* when not NULL: use it instead of partitioning and placing */
    int estimate;                    /* 1: estimate packets x hops even for the in-order placement */
    int compress_all;                /* 1: compress every routing table as far as it goes (else only those over
                                      * the chip's capacity) */
} sm_deploy_opts_t;

/* Generates connectivity (a pure function of net and seed), partitions neurons onto cores in order under
 * every per-core limit, allocates keys and builds every router's table. SM_ENOFIT with the limit, the
 * shortfall and a mesh size that would fit when the network does not fit. */
int sm_deploy_build(const sm_net_t *net, const sm_chip_t *chip, uint64_t seed, sm_deploy_t *d,
                    sm_errbuf_t *eb);
/* The same with a placer or a placement (opts may be NULL: in order). */
int sm_deploy_build_ex(const sm_net_t *net, const sm_chip_t *chip, uint64_t seed, const sm_deploy_opts_t *opts,
                       sm_deploy_t *d, sm_errbuf_t *eb);
/* Writes the deployment's partition and placement as JSON (docs/placement-format.md), atomically. */
int sm_placement_write(const sm_deploy_t *d, const char *path, sm_errbuf_t *eb);
/* Reads a placement file; errors as file:line:column. */
int sm_placement_load(const char *path, sm_placement_t *p, sm_errbuf_t *eb);
void sm_deploy_free(sm_deploy_t *d);
/* Frees the synapse table (row, syn) and keeps the rest: a simulation keeps its own copy of the synapses, so
 * once every simulation of this deployment has been created the table is no longer needed. A simulation
 * created afterwards is refused. */
void sm_deploy_drop_synapses(sm_deploy_t *d);

#ifdef __cplusplus
}
#endif
#endif
