/* loader/chip.c: chip descriptions: the built-in presets (loihi, small), PRESET:WxH resizing and chip JSON. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "loader/json.h"
#include "spikemesh/loader.h"

/* loihi: Davies et al., "Loihi: a neuromorphic manycore processor with on-chip learning", IEEE Micro 38(1),
 * 2018: 128 neuromorphic cores as 8x4 tiles of 4 cores, 1024 neurons per core, 128 KiB of synapse memory per
 * core, at most 4096 fan-in and 4096 fan-out axons per core. Routing tables of 1024 entries and 4 bytes per
 * synapse (a compressed synapse entry) are this model's choices, documented in docs/chip-format.md. */
static const sm_chip_t sm__presets[] = {
    {.name = "loihi", .width = 8, .height = 4, .cores_per_tile = 4, .max_neurons = 1024,
     .synapse_memory = 128 * 1024, .synapse_bytes = 4, .max_fan_in = 4096, .max_fan_out = 4096,
     .table_entries = 1024, .max_delay_steps = 62,
     /* Hop costs: 4.1 ns east-west and 6.5 ns north-south per hop (Davies et al. 2018, Table 2), rounded up to
      * cycles of a 1 GHz router clock; one-flit spike packets on one-flit links; input buffers of 4 packets
      * and no drops (Loihi's mesh applies backpressure) are this model's assumptions. */
     .noc = {.kind = SM_NOC_IQ, .buffer_depth = 4, .packet_flits = 1, .link_flits = 1, .hop_cycles_ew = 5,
             .hop_cycles_ns = 7, .drop_after = 0, .reinject = 0},
     /* Davies et al., IEEE Micro 38(1) 2018, Table 2 (pre-silicon figures): 23.6 pJ / 3.5 ns per synaptic
      * operation, 120 pJ / 6.1 ns per synaptic update, 81 pJ / 8.4 ns per active and 52 pJ / 5.3 ns per inactive
      * neuron update, 1.7 pJ / 2.1 ns per spike within a tile, 3.0 pJ / 4.1 ns per east-west hop, 4.0 pJ /
      * 6.5 ns per north-south hop, barrier synchronisation 113 ns (1 tile) to 465 ns (32 tiles). The barrier is
      * modelled as growing with the mesh diameter: 113 ns + 35.2 ns per hop of the 8x4 mesh's diameter of 10.
      * Static power is not given there and is left at 0; the 1 ns router clock is this model's assumption. */
     .costs = {.neuron_active_pj = 81.0, .neuron_active_ns = 8.4, .neuron_idle_pj = 52.0, .neuron_idle_ns = 5.3,
               .syn_op_pj = 23.6, .syn_op_ns = 3.5, .syn_update_pj = 120.0, .syn_update_ns = 6.1,
               .spike_tile_pj = 1.7, .spike_tile_ns = 2.1, .hop_ew_pj = 3.0, .hop_ew_ns = 4.1, .hop_ns_pj = 4.0,
               .hop_ns_ns = 6.5, .barrier_ns = 113.0, .barrier_hop_ns = 35.2, .static_w = 0.0, .cycle_ns = 1.0}},
    {.name = "small", .width = 2, .height = 2, .cores_per_tile = 2, .max_neurons = 256,
     .synapse_memory = 64 * 1024, .synapse_bytes = 4, .max_fan_in = 1024, .max_fan_out = 4096,
     .table_entries = 256, .max_delay_steps = 16,
     .noc = {.kind = SM_NOC_IQ, .buffer_depth = 2, .packet_flits = 1, .link_flits = 1, .hop_cycles_ew = 1,
             .hop_cycles_ns = 1, .drop_after = 0, .reinject = 0},
     /* the test chip takes Loihi's per-operation figures */
     .costs = {.neuron_active_pj = 81.0, .neuron_active_ns = 8.4, .neuron_idle_pj = 52.0, .neuron_idle_ns = 5.3,
               .syn_op_pj = 23.6, .syn_op_ns = 3.5, .syn_update_pj = 120.0, .syn_update_ns = 6.1,
               .spike_tile_pj = 1.7, .spike_tile_ns = 2.1, .hop_ew_pj = 3.0, .hop_ew_ns = 4.1, .hop_ns_pj = 4.0,
               .hop_ns_ns = 6.5, .barrier_ns = 113.0, .barrier_hop_ns = 35.2, .static_w = 0.0, .cycle_ns = 1.0}},
};
static const char *const sm__preset_names[] = {"loihi", "small"};
static const char *const sm__preset_about[] = {
    "Intel Loihi (2018): 8x4 tiles x 4 cores, 1024 neurons and 128 KiB synapse memory per core",
    "test chip: 2x2 tiles x 2 cores, 256 neurons and 64 KiB synapse memory per core",
};

uint32_t sm_chip_presets(const char *const **names, const char *const **about)
{
    *names = sm__preset_names;
    *about = sm__preset_about;
    return (uint32_t)(sizeof sm__presets / sizeof sm__presets[0]);
}

/* Board links (between chips): a hop costs 20 router cycles of latency, 40 ns and 100 pJ, and carries one flit
 * per cycle: this model's assumptions for an off-chip serial link, to be set per board in chip files. */
static void sm__board_defaults(sm_chip_t *chip)
{
    chip->chips_x = chip->chips_y = 1;
    chip->noc.chip_hop_cycles = 20;
    chip->noc.chip_link_flits = 1;
    chip->costs.hop_chip_pj = 100.0;
    chip->costs.hop_chip_ns = 40.0;
}

int sm_chip_preset(const char *name, sm_chip_t *chip)
{
    for (size_t i = 0; i < sizeof sm__presets / sizeof sm__presets[0]; i++) {
        if (strcmp(sm__presets[i].name, name) == 0) {
            *chip = sm__presets[i];
            sm__board_defaults(chip);
            return 0;
        }
    }
    return SM_ENOENT;
}

#define SM__MESH_MAX 4096u

/* The largest cost a chip file may give (pJ, ns or W): totals over a run stay finite. */
#define SM__COST_MAX 1e9

int sm_chip_resolve(const char *spec, sm_chip_t *chip, sm_errbuf_t *eb)
{
    char base[SM_NAME_MAX - 16]; /* room for ":WxH" after it in chip->name */
    const char *colon = strrchr(spec, ':'), *star = strrchr(spec, '*');
    if (star && (!colon || star > colon))
        colon = star; /* PRESET*XxY: a board of X x Y chips */
    struct stat st;
    if (stat(spec, &st) == 0)
        return sm_chip_load(spec, chip, eb);
    int stat_errno = errno;
    size_t blen = colon ? (size_t)(colon - spec) : strlen(spec);
    if (blen >= sizeof base)
        return sm_errorf(eb, SM_ENOENT, "--chip '%s': no such file or preset (presets: loihi, small)", spec);
    memcpy(base, spec, blen);
    base[blen] = '\0';
    if (sm_chip_preset(base, chip) != 0) {
        if (strchr(spec, '/') || strstr(spec, ".json"))
            return sm_errorf(eb, SM_EIO, "--chip '%s': cannot read the file: %s", spec, strerror(stat_errno));
        return sm_errorf(eb, SM_ENOENT, "--chip '%s': no such file or preset (presets: loihi, small)", spec);
    }
    if (colon) {
        const char *s = colon + 1;
        char *end;
        if (!isdigit((unsigned char)*s))
            goto bad_size;
        unsigned long w = strtoul(s, &end, 10);
        if (*end != 'x' || !isdigit((unsigned char)end[1]))
            goto bad_size;
        unsigned long h = strtoul(end + 1, &end, 10);
        if (*end != '\0')
            goto bad_size;
        if (w < 1 || h < 1 || w > SM__MESH_MAX || h > SM__MESH_MAX || w * h > (1ul << 22))
            return sm_errorf(eb, SM_ERANGE, "--chip '%s': mesh sides must be 1 to %u tiles, at most %lu tiles in all",
                             spec, SM__MESH_MAX, 1ul << 22);
        if (*colon == '*') {
            if ((uint64_t)chip->width * w > SM__MESH_MAX || (uint64_t)chip->height * h > SM__MESH_MAX ||
                (uint64_t)chip->width * w * chip->height * h > (1ul << 22))
                return sm_errorf(eb, SM_ERANGE, "--chip '%s': a board of %lux%lu chips of %ux%u tiles is larger than "
                                 "the %u tiles a side supported", spec, w, h, chip->width, chip->height, SM__MESH_MAX);
            chip->chips_x = (uint32_t)w;
            chip->chips_y = (uint32_t)h;
            chip->width *= (uint32_t)w;
            chip->height *= (uint32_t)h;
            snprintf(chip->name, sizeof chip->name, "%s*%lux%lu", base, w, h);
        } else {
            chip->width = (uint32_t)w;
            chip->height = (uint32_t)h;
            snprintf(chip->name, sizeof chip->name, "%s:%lux%lu", base, w, h);
        }
    }
    return 0;
bad_size:
    return sm_errorf(eb, SM_EINVAL,
                     "--chip '%s': write the mesh size as WxH (%s:16x16) or the board as XxY chips (%s*4x4)", spec,
                     base, base);
}

static int sm__chip_uint(sm__jctx_t *cx, json_t *obj, const char *key, uint64_t lo, uint64_t hi, uint64_t def,
                         int required, uint64_t *out)
{
    return sm__jget_uint(cx, obj, key, required, def, lo, hi, out);
}

int sm_chip_load(const char *path, sm_chip_t *chip, sm_errbuf_t *eb)
{
    char *text;
    size_t len;
    int rc = sm__read_file(path, &text, &len, eb);
    if (rc)
        return rc;
    rc = sm_chip_parse(text, len, path, chip, eb);
    free(text);
    return rc;
}

int sm_chip_parse(const char *text, size_t len, const char *name, sm_chip_t *chip, sm_errbuf_t *eb)
{
    static const char *const keys[] = {"name", "mesh", "cores_per_tile", "core", "router", "costs", "board", NULL};
    static const char *const mkeys[] = {"width", "height", NULL};
    static const char *const ckeys[] = {"max_neurons", "synapse_memory_bytes", "synapse_bytes", "max_fan_in",
                                        "max_fan_out", "max_delay_steps", NULL};
    static const char *const rkeys[] = {"table_entries",  "model",         "buffer_depth",  "packet_flits",
                                        "link_flits_per_cycle", "hop_cycles_ew", "hop_cycles_ns",
                                        "drop_after_cycles", "reinject", NULL};
    json_t *root = NULL, *o;
    uint64_t v;
    const char *cname;
    int rc;
    sm__jctx_t cx = {.file = name, .text = text, .len = len, .eb = eb};
    memset(chip, 0, sizeof *chip);
    if ((rc = sm__json_parse(&cx, &root)) != 0)
        goto out;
    if ((rc = sm__jcheck_keys(&cx, root, keys)) != 0 || (rc = sm__jget_str(&cx, root, "name", 0, "chip", &cname)) != 0)
        goto out;
    if (strlen(cname) >= sizeof chip->name) {
        sm__jpush_key(&cx, "name");
        rc = sm__jerr(&cx, SM_ERANGE, "at most %zu bytes, got %zu", sizeof chip->name - 1, strlen(cname));
        goto out;
    }
    snprintf(chip->name, sizeof chip->name, "%s", cname);
    if ((rc = sm__chip_uint(&cx, root, "cores_per_tile", 1, SM_TILE_MAX_CORES, 1, 1, &v)) != 0)
        goto out;
    chip->cores_per_tile = (uint32_t)v;
    const char *sect[] = {"mesh", "core", "router"};
    for (int s = 0; s < 3; s++) {
        o = json_object_get(root, sect[s]);
        if (!o) {
            rc = sm__jerr(&cx, SM_EPARSE, "missing required field \"%s\"", sect[s]);
            goto out;
        }
        sm__jpush_key(&cx, sect[s]);
        if (!json_is_object(o)) {
            rc = sm__jerr(&cx, SM_EPARSE, "must be an object");
            goto out;
        }
        if (s == 0) {
            if ((rc = sm__jcheck_keys(&cx, o, mkeys)) != 0 ||
                (rc = sm__chip_uint(&cx, o, "width", 1, SM__MESH_MAX, 1, 1, &v)) != 0)
                goto out;
            chip->width = (uint32_t)v;
            if ((rc = sm__chip_uint(&cx, o, "height", 1, SM__MESH_MAX, 1, 1, &v)) != 0)
                goto out;
            chip->height = (uint32_t)v;
            if ((uint64_t)chip->width * chip->height > (1u << 22)) {
                rc = sm__jerr(&cx, SM_ERANGE, "%ux%u tiles is more than the %u supported", chip->width,
                              chip->height, 1u << 22);
                goto out;
            }
        } else if (s == 1) {
            if ((rc = sm__jcheck_keys(&cx, o, ckeys)) != 0 ||
                (rc = sm__chip_uint(&cx, o, "max_neurons", 1, 1u << 24, 1, 1, &v)) != 0)
                goto out;
            chip->max_neurons = (uint32_t)v;
            if ((rc = sm__chip_uint(&cx, o, "synapse_memory_bytes", 0, UINT64_C(1) << 40, 0, 1, &v)) != 0)
                goto out;
            chip->synapse_memory = v;
            if ((rc = sm__chip_uint(&cx, o, "synapse_bytes", 1, 64, 4, 0, &v)) != 0)
                goto out;
            chip->synapse_bytes = (uint32_t)v;
            if ((rc = sm__chip_uint(&cx, o, "max_fan_in", 1, UINT32_MAX, UINT32_MAX, 0, &v)) != 0)
                goto out;
            chip->max_fan_in = (uint32_t)v;
            if ((rc = sm__chip_uint(&cx, o, "max_fan_out", 1, UINT32_MAX, UINT32_MAX, 0, &v)) != 0)
                goto out;
            chip->max_fan_out = (uint32_t)v;
            if ((rc = sm__chip_uint(&cx, o, "max_delay_steps", 1, SM_SYN_MAX_DELAY, SM_SYN_MAX_DELAY, 0, &v)) != 0)
                goto out;
            chip->max_delay_steps = (uint32_t)v;
        } else {
            if ((rc = sm__jcheck_keys(&cx, o, rkeys)) != 0 ||
                (rc = sm__chip_uint(&cx, o, "table_entries", 1, 1u << 24, 1, 1, &v)) != 0)
                goto out;
            chip->table_entries = (uint32_t)v;
            const char *model;
            int reinject;
            if ((rc = sm__jget_str(&cx, o, "model", 0, "iq", &model)) != 0)
                goto out;
            if (strcmp(model, "iq") == 0 || strcmp(model, "ideal") == 0) {
                chip->noc.kind = model[1] == 'q' ? SM_NOC_IQ : SM_NOC_IDEAL;
            } else {
                sm__jpush_key(&cx, "model");
                rc = sm__jerr(&cx, SM_ENOENT, "unknown router model \"%.40s\" (known: iq, ideal)", model);
                goto out;
            }
            if ((rc = sm__chip_uint(&cx, o, "buffer_depth", 1, 1u << 20, 4, 0, &v)) != 0)
                goto out;
            chip->noc.buffer_depth = (uint32_t)v;
            if ((rc = sm__chip_uint(&cx, o, "packet_flits", 1, 1024, 1, 0, &v)) != 0)
                goto out;
            chip->noc.packet_flits = (uint32_t)v;
            if ((rc = sm__chip_uint(&cx, o, "link_flits_per_cycle", 1, 1024, 1, 0, &v)) != 0)
                goto out;
            chip->noc.link_flits = (uint32_t)v;
            if ((rc = sm__chip_uint(&cx, o, "hop_cycles_ew", 1, 1u << 20, 1, 0, &v)) != 0)
                goto out;
            chip->noc.hop_cycles_ew = (uint32_t)v;
            if ((rc = sm__chip_uint(&cx, o, "hop_cycles_ns", 1, 1u << 20, 1, 0, &v)) != 0)
                goto out;
            chip->noc.hop_cycles_ns = (uint32_t)v;
            if ((rc = sm__chip_uint(&cx, o, "drop_after_cycles", 0, UINT64_C(1) << 40, 0, 0, &v)) != 0)
                goto out;
            chip->noc.drop_after = v;
            if ((rc = sm__jget_bool(&cx, o, "reinject", 0, 0, &reinject)) != 0)
                goto out;
            chip->noc.reinject = reinject;
        }
        sm__jpop(&cx);
    }
    sm__board_defaults(chip);
    {
        /* Optional board: the mesh above is one chip; a board of chips_x x chips_y of them. */
        static const char *const bkeys[] = {"chips_x", "chips_y", "link_hop_cycles", "link_flits_per_cycle",
                                            "link_hop_pj", "link_hop_ns", NULL};
        o = json_object_get(root, "board");
        if (o) {
            sm__jpush_key(&cx, "board");
            if (!json_is_object(o)) {
                rc = sm__jerr(&cx, SM_EPARSE, "must be an object");
                goto out;
            }
            uint64_t bx, by, hc, lf;
            if ((rc = sm__jcheck_keys(&cx, o, bkeys)) != 0 ||
                (rc = sm__chip_uint(&cx, o, "chips_x", 1, 4096, 1, 1, &bx)) != 0 ||
                (rc = sm__chip_uint(&cx, o, "chips_y", 1, 4096, 1, 1, &by)) != 0 ||
                (rc = sm__chip_uint(&cx, o, "link_hop_cycles", 1, 1u << 20, 20, 0, &hc)) != 0 ||
                (rc = sm__chip_uint(&cx, o, "link_flits_per_cycle", 1, 1024, 1, 0, &lf)) != 0 ||
                (rc = sm__jget_num(&cx, o, "link_hop_pj", 0, chip->costs.hop_chip_pj, &chip->costs.hop_chip_pj)) != 0 ||
                (rc = sm__jget_num(&cx, o, "link_hop_ns", 0, chip->costs.hop_chip_ns, &chip->costs.hop_chip_ns)) != 0)
                goto out;
            if (chip->costs.hop_chip_pj < 0 || chip->costs.hop_chip_ns < 0 || chip->costs.hop_chip_pj > SM__COST_MAX ||
                chip->costs.hop_chip_ns > SM__COST_MAX) {
                rc = sm__jerr(&cx, SM_ERANGE, "link costs must be zero or positive and at most %g", SM__COST_MAX);
                goto out;
            }
            if ((uint64_t)chip->width * bx > SM__MESH_MAX || (uint64_t)chip->height * by > SM__MESH_MAX ||
                (uint64_t)chip->width * bx * chip->height * by > (1u << 22)) {
                rc = sm__jerr(&cx, SM_ERANGE, "%llux%llu chips of %ux%u tiles is more than the mesh supports",
                              (unsigned long long)bx, (unsigned long long)by, chip->width, chip->height);
                goto out;
            }
            chip->chips_x = (uint32_t)bx;
            chip->chips_y = (uint32_t)by;
            chip->width *= (uint32_t)bx;
            chip->height *= (uint32_t)by;
            chip->noc.chip_hop_cycles = (uint32_t)hc;
            chip->noc.chip_link_flits = (uint32_t)lf;
            sm__jpop(&cx);
        }
    }
    {
        /* Optional per-operation costs: absent fields keep the loihi preset's values. */
        static const char *const names[] = {
            "neuron_active_pj", "neuron_active_ns", "neuron_idle_pj", "neuron_idle_ns", "syn_op_pj", "syn_op_ns",
            "syn_update_pj", "syn_update_ns", "spike_tile_pj", "spike_tile_ns", "hop_ew_pj", "hop_ew_ns",
            "hop_ns_pj", "hop_ns_ns", "barrier_ns", "barrier_hop_ns", "static_w", "cycle_ns", NULL};
        sm_chip_t loihi;
        sm_chip_preset("loihi", &loihi);
        double hop_chip_pj = chip->costs.hop_chip_pj, hop_chip_ns = chip->costs.hop_chip_ns; /* from "board" */
        chip->costs = loihi.costs;
        chip->costs.hop_chip_pj = hop_chip_pj;
        chip->costs.hop_chip_ns = hop_chip_ns;
        double *fields[] = {&chip->costs.neuron_active_pj, &chip->costs.neuron_active_ns,
                            &chip->costs.neuron_idle_pj,   &chip->costs.neuron_idle_ns,
                            &chip->costs.syn_op_pj,        &chip->costs.syn_op_ns,
                            &chip->costs.syn_update_pj,    &chip->costs.syn_update_ns,
                            &chip->costs.spike_tile_pj,    &chip->costs.spike_tile_ns,
                            &chip->costs.hop_ew_pj,        &chip->costs.hop_ew_ns,
                            &chip->costs.hop_ns_pj,        &chip->costs.hop_ns_ns,
                            &chip->costs.barrier_ns,       &chip->costs.barrier_hop_ns,
                            &chip->costs.static_w,         &chip->costs.cycle_ns};
        o = json_object_get(root, "costs");
        if (o) {
            sm__jpush_key(&cx, "costs");
            if (!json_is_object(o)) {
                rc = sm__jerr(&cx, SM_EPARSE, "must be an object of per-operation costs");
                goto out;
            }
            if ((rc = sm__jcheck_keys(&cx, o, names)) != 0)
                goto out;
            for (int k = 0; names[k]; k++) {
                if ((rc = sm__jget_num(&cx, o, names[k], 0, *fields[k], fields[k])) != 0)
                    goto out;
                if (*fields[k] < 0 || (k == 17 && *fields[k] <= 0) || *fields[k] > SM__COST_MAX) {
                    sm__jpush_key(&cx, names[k]);
                    rc = sm__jerr(&cx, SM_ERANGE, "must be %s and at most %g, got %g",
                                  k == 17 ? "positive" : "zero or positive", SM__COST_MAX, *fields[k]);
                    goto out;
                }
            }
            sm__jpop(&cx);
        }
    }
out:
    json_decref(root);
    return rc;
}
