/* runtime/output.c: output files of a run (spikes.csv, traffic.json, summary.json), written under temporary
 * names and renamed only when complete, and the JSON summary. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/sim_internal.h"

static const char *const sm__out_names[SM__NOUT] = {"spikes.csv", "traffic.json", "summary.json", "raster.svg",
                                                    "traffic.svg", "spikes.vcd",   "trace.json",   "latency.csv"};
enum {
    SM__OUT_SPIKES, SM__OUT_TRAFFIC, SM__OUT_SUMMARY, SM__OUT_RASTER, SM__OUT_TRAFFIC_SVG, SM__OUT_VCD, SM__OUT_TRACE,
    SM__OUT_LATENCY
};

static char *sm__join(const char *dir, const char *name, const char *suffix)
{
    size_t n = strlen(dir) + strlen(name) + strlen(suffix) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s%s", dir, name, suffix);
    return p;
}

/* An output whose final name is taken by a directory cannot be renamed into place: say so before anything is
 * written (and again before the renames), so that no output is left half-renamed. */
static int sm__out_blocked(sm_sim_t *s, sm_errbuf_t *eb)
{
    struct stat st;
    for (int k = 0; k < SM__NOUT; k++)
        if (s->out_on[k] && stat(s->out_final[k], &st) == 0 && S_ISDIR(st.st_mode))
            return sm_errorf(eb, SM_EIO, "--out '%s': cannot write %s: a directory has that name", s->opts.out_dir,
                             sm__out_names[k]);
    return 0;
}

int sm__out_open(sm_sim_t *s, sm_errbuf_t *eb)
{
    const char *dir = s->opts.out_dir;
    struct stat st;
    if (!dir)
        return 0;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT || mkdir(dir, 0777) != 0)
            return sm_errorf(eb, SM_EIO, "--out '%s': cannot create the directory: %s", dir, strerror(errno));
        s->out_made = 1;
    } else if (!S_ISDIR(st.st_mode)) {
        return sm_errorf(eb, SM_EIO, "--out '%s': exists and is not a directory", dir);
    }
    for (int k = 0; k < SM__NOUT; k++) {
        s->out_part[k] = sm__join(dir, sm__out_names[k], ".part");
        s->out_final[k] = sm__join(dir, sm__out_names[k], "");
        if (!s->out_part[k] || !s->out_final[k]) {
            sm__out_abort(s);
            return sm_errorf(eb, SM_ENOMEM, "out of memory");
        }
    }
    for (int k = 0; k < SM__NOUT; k++)
        s->out_on[k] = k < SM__OUT_TRACE || (k == SM__OUT_TRACE && (s->opts.timing || s->opts.mesh_cycle)) ||
                       (k == SM__OUT_LATENCY && s->opts.mesh_cycle);
    int rc = sm__out_blocked(s, eb);
    if (rc) {
        sm__out_abort(s);
        return rc;
    }
    s->spikes_f = fopen(s->out_part[SM__OUT_SPIKES], "w");
    if (!s->spikes_f) {
        int e = errno;
        sm__out_abort(s);
        return sm_errorf(eb, SM_EIO, "--out '%s': cannot write there: %s", dir, strerror(e));
    }
    setvbuf(s->spikes_f, NULL, _IOFBF, 1 << 20);
    fputs("step,neuron\n", s->spikes_f);
    return 0;
}

void sm__out_spikes(sm_sim_t *s, uint64_t step, const uint32_t *ids, uint32_t n)
{
    char line[48];
    for (uint32_t k = 0; k < n; k++) {
        /* Both numbers written right to left into a small buffer: fprintf is the slow part otherwise. */
        char *p = line + sizeof line;
        *--p = '\n';
        uint32_t id = ids[k];
        do {
            *--p = (char)('0' + id % 10);
            id /= 10;
        } while (id);
        *--p = ',';
        uint64_t t = step;
        do {
            *--p = (char)('0' + t % 10);
            t /= 10;
        } while (t);
        fwrite(p, 1, (size_t)(line + sizeof line - p), s->spikes_f);
    }
}

int sm__out_finish(sm_sim_t *s, sm_errbuf_t *eb)
{
    if (!s->spikes_f)
        return 0;
    int bad = fflush(s->spikes_f) != 0 || ferror(s->spikes_f);
    int e = errno;
    bad |= fclose(s->spikes_f) != 0;
    s->spikes_f = NULL;
    if (bad) {
        sm__out_abort(s);
        return sm_errorf(eb, SM_EIO, "--out '%s': writing spikes.csv failed: %s", s->opts.out_dir, strerror(e));
    }
    return 0;
}

void sm__out_abort(sm_sim_t *s)
{
    if (s->spikes_f) {
        fclose(s->spikes_f);
        s->spikes_f = NULL;
    }
    for (int k = 0; k < SM__NOUT; k++) {
        if (s->out_part[k])
            remove(s->out_part[k]);
        free(s->out_part[k]);
        free(s->out_final[k]);
        s->out_part[k] = s->out_final[k] = NULL;
    }
    if (s->out_made && s->opts.out_dir) /* only when empty: nothing of an earlier run is in a folder this run made */
        (void)rmdir(s->opts.out_dir);
    s->out_made = 0;
}

static json_t *sm__xy(const sm_mesh_t *m, uint32_t t)
{
    return json_pack("[II]", (json_int_t)(t % m->width), (json_int_t)(t / m->width));
}

static const char *const sm__dir_names[SM_NDIRS] = {"E", "N", "W", "S"};

/* traffic.json of a deployment: its mesh's link, router and core counters and the per-core counters cc; tm, when
 * not NULL, adds the timing model's figures (the cycle-level mesh's and each core's). */
static json_t *sm__traffic_obj(const sm_deploy_t *d, const sm_core_counters_t *cc, const sm_timing_t *tmp)
{
    int timed = tmp != NULL;
    sm_timing_t tm;
    if (timed)
        tm = *tmp;
    else
        memset(&tm, 0, sizeof tm);
    const sm_mesh_t *m = &d->mesh;
    uint32_t tiles = sm_mesh_tiles(m);
    json_t *links = json_array(), *routers = json_array(), *cores = json_array();
    for (uint32_t t = 0; t < tiles; t++) {
        for (int dd = 0; dd < SM_NDIRS; dd++) {
            uint32_t nb = sm_mesh_neighbor(m, t, dd);
            if (nb == UINT32_MAX)
                continue;
            json_array_append_new(links, json_pack("{s:o,s:o,s:s,s:I}", "from", sm__xy(m, t), "to", sm__xy(m, nb),
                                                   "dir", sm__dir_names[dd], "packets",
                                                   (json_int_t)m->link_packets[(size_t)t * SM_NDIRS + (uint32_t)dd]));
            if (timed && tm.noc) { /* the cycle-level mesh's own counters of this link */
                const sm_noc_port_t *pt = sm_noc_ports(tm.noc, t) + dd;
                json_object_set_new(json_array_get(links, json_array_size(links) - 1), "cycle_model",
                                    json_pack("{s:I,s:I,s:I,s:I,s:I}", "packets", (json_int_t)pt->packets, "flits",
                                              (json_int_t)pt->flits, "busy_cycles", (json_int_t)pt->busy_cycles,
                                              "stall_cycles", (json_int_t)pt->stall_cycles, "drops",
                                              (json_int_t)pt->drops));
            }
        }
        json_array_append_new(routers, json_pack("{s:I,s:I,s:I,s:I}", "x", (json_int_t)(t % m->width), "y",
                                                 (json_int_t)(t / m->width), "packets",
                                                 (json_int_t)m->router_packets[t], "table_entries",
                                                 (json_int_t)m->tables[t].n));
        if (timed && tm.noc)
            json_object_set_new(json_array_get(routers, json_array_size(routers) - 1), "peak_queue_packets",
                                json_integer((json_int_t)sm_noc_peak_queue(tm.noc, t)));
    }
    for (uint32_t c = 0; c < d->ncores; c++) {
        const sm_core_t *co = &d->cores[c];
        json_array_append_new(
            cores, json_pack("{s:I,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "core", (json_int_t)c, "tile",
                             sm__xy(m, co->tile), "slot", (json_int_t)co->slot, "first_neuron", (json_int_t)co->first,
                             "neurons", (json_int_t)co->count, "synapse_bytes", (json_int_t)co->syn_bytes, "fan_in",
                             (json_int_t)co->fan_in, "neuron_updates", (json_int_t)cc[c].neuron_updates,
                             "synaptic_ops", (json_int_t)cc[c].synaptic_ops, "spikes_sent",
                             (json_int_t)cc[c].spikes_sent, "packets_in", (json_int_t)cc[c].packets_in));
        if (timed) {
            json_t *last = json_array_get(cores, json_array_size(cores) - 1);
            json_object_set_new(last, "active_updates", json_integer((json_int_t)cc[c].active_updates));
            json_object_set_new(last, "modelled_busy_ns", json_real(tm.core_busy_ns[c]));
            json_object_set_new(last, "energy_joules", json_real(tm.core_energy_pj[c] * 1e-12));
        }
    }
    return json_pack("{s:{s:I,s:I,s:I},s:o,s:o,s:o}", "mesh", "width", (json_int_t)m->width, "height",
                     (json_int_t)m->height, "cores_per_tile", (json_int_t)m->cores_per_tile, "links", links,
                     "routers", routers, "cores", cores);
}

static json_t *sm__traffic_json(sm_sim_t *s)
{
    sm_timing_t tm;
    int timed = sm_sim_timing(s, &tm) == 0;
    return sm__traffic_obj(s->d, s->cc, timed ? &tm : NULL);
}

char *sm_traffic_json_text(const sm_deploy_t *d, const sm_core_counters_t *cc)
{
    json_t *o = sm__traffic_obj(d, cc, NULL);
    char *txt = o ? json_dumps(o, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    return txt;
}

char *sm_sim_summary_json(sm_sim_t *s, int indent)
{
    const sm_deploy_t *d = s->d;
    const sm_net_t *net = s->net;
    sm_sim_stats(s); /* folds the counters and gathers the profile */
    double secs = (double)s->step * net->dt * 1e-3;
    json_t *pops = json_array();
    for (uint32_t p = 0; p < net->npops; p++) {
        double rate = secs > 0 ? (double)s->pop_spikes[p] / net->pops[p].size / secs : 0.0;
        json_array_append_new(pops, json_pack("{s:s,s:I,s:I,s:f}", "name", net->pops[p].name, "size",
                                              (json_int_t)net->pops[p].size, "spikes", (json_int_t)s->pop_spikes[p],
                                              "rate_hz", rate));
    }
    uint32_t bt;
    int bd;
    uint64_t bp;
    sm_mesh_busiest_link(&d->mesh, &bt, &bd, &bp);
    json_t *busiest = bd < 0 ? json_null()
                             : json_pack("{s:o,s:o,s:s,s:I}", "from", sm__xy(&d->mesh, bt), "to",
                                         sm__xy(&d->mesh, sm_mesh_neighbor(&d->mesh, bt, bd)), "dir",
                                         sm__dir_names[bd], "packets", (json_int_t)bp);
    uint64_t avail = (uint64_t)d->chip.width * d->chip.height * d->chip.cores_per_tile;
    json_t *o = json_pack(
        "{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:f,s:I,s:I,s:f,s:o,s:I,s:I,s:I,s:I,s:I,s:o,s:I,s:I,s:f,s:f,s:f,s:b,s:I}",
        "network", net->name, "chip", d->chip.name, "seed", (json_int_t)d->seed, "neurons", (json_int_t)d->n,
        "synapses", (json_int_t)d->nsyn, "cores_used", (json_int_t)d->ncores, "cores_available", (json_int_t)avail,
        "dt_ms", net->dt, "steps", (json_int_t)s->step, "spikes", (json_int_t)s->stats.spikes, "mean_rate_hz",
        secs > 0 && d->n ? (double)s->stats.spikes / d->n / secs : 0.0, "populations", pops, "packets",
        (json_int_t)s->stats.packets, "hops", (json_int_t)s->stats.hops, "deliveries",
        (json_int_t)s->stats.deliveries, "synaptic_ops", (json_int_t)s->stats.synaptic_ops, "neuron_updates",
        (json_int_t)s->stats.neuron_updates, "busiest_link", busiest, "table_entries", (json_int_t)d->table_entries,
        "max_table_entries", (json_int_t)d->max_table, "setup_seconds", s->stats.setup_seconds, "loop_seconds",
        s->stats.loop_seconds, "steps_per_second",
        s->stats.loop_seconds > 0 ? (double)s->step / s->stats.loop_seconds : 0.0, "interrupted",
        s->stats.interrupted, "overruns", (json_int_t)s->stats.overruns);
    if (!o)
        return NULL;
    sm_timing_t tm;
    if (sm_sim_timing(s, &tm) == 0) {
        static const char *const kinds[SM_ENERGY_KINDS] = {"neuron_active", "neuron_idle", "synaptic_op",
                                                           "spike_in_tile", "hop_east_west", "hop_north_south",
                                                           "hop_between_chips", "static"};
        json_t *slow = json_array(), *by = json_object();
        for (uint32_t k = 0; k < tm.nslowest; k++)
            json_array_append_new(slow, json_pack("{s:I,s:f,s:I,s:f,s:f,s:f}", "step", (json_int_t)tm.slowest[k].step,
                                                  "total_ns", tm.slowest[k].total_ns, "slowest_core",
                                                  (json_int_t)tm.slowest[k].core, "core_ns", tm.slowest[k].core_ns,
                                                  "mesh_drain_ns", tm.slowest[k].drain_ns, "barrier_ns",
                                                  tm.slowest[k].barrier_ns));
        for (int k = 0; k < SM_ENERGY_KINDS; k++)
            json_object_set_new(by, kinds[k], json_real(tm.energy_pj[k] * 1e-12));
        json_object_set_new(
            o, "timing",
            json_pack("{s:s,s:I,s:f,s:{s:f,s:f,s:f,s:f,s:f},s:f,s:I,s:I,s:I,s:o}", "mesh_model",
                      tm.cycle_model ? "cycle" : "zero-load", "steps", (json_int_t)tm.steps, "total_seconds",
                      tm.total_ns * 1e-9, "step_ns", "mean", tm.mean_ns, "min", tm.min_ns, "p50", tm.p50_ns, "p99",
                      tm.p99_ns, "max", tm.max_ns, "barrier_ns", tm.barrier_ns, "core_bound_steps",
                      (json_int_t)tm.core_bound_steps, "mesh_bound_steps", (json_int_t)tm.mesh_bound_steps,
                      "steps_over_dt", (json_int_t)tm.steps_over_dt, "slowest_steps", slow));
        if (tm.noc) { /* every destination copy is accounted for: sent = delivered + dropped */
            sm_noc_totals_t nt = sm_noc_totals(tm.noc);
            json_object_set_new(json_object_get(o, "timing"), "mesh_copies",
                                json_pack("{s:I,s:I,s:I,s:I}", "sent", (json_int_t)nt.sent, "delivered",
                                          (json_int_t)nt.delivered, "dropped", (json_int_t)nt.dropped, "reinjected",
                                          (json_int_t)nt.reinjected));
        }
        json_object_set_new(o, "energy",
                            json_pack("{s:f,s:f,s:o}", "total_joules", tm.total_energy_pj * 1e-12,
                                      "per_step_joules",
                                      tm.steps ? tm.total_energy_pj * 1e-12 / (double)tm.steps : 0.0, "by_kind_joules",
                                      by));
    }
    json_object_set_new(o, "placer", json_string(sm_placer_name(d->placer)));
    if (d->est_hops >= 0)
        json_object_set_new(o, "estimated_pair_hops", json_real(d->est_hops));
    json_object_set_new(o, "threads", json_integer(s->stats.threads));
    json_object_set_new(o, "precision", json_string(s->opts.single ? "single" : "double"));
    json_object_set_new(o, "simd", json_string(sm_core_simd()));
    static const char *const split_names[] = {"fixed", "adapt", "shuffle"};
    json_object_set_new(o, "split", json_string(split_names[s->split]));
    json_t *tn = json_array();
    for (uint32_t w = 0; w < s->nworkers; w++)
        json_array_append_new(tn, json_integer(sm__worker_neurons(s, w)));
    json_object_set_new(o, "thread_neurons", tn);
    if (s->opts.profile && s->stats.thread_phase_seconds) {
        json_t *pr = json_pack("{s:f,s:f,s:f}", "update", s->stats.phase_seconds[0], "route",
                               s->stats.phase_seconds[1], "record_and_wait", s->stats.phase_seconds[2]);
        json_t *th = json_array();
        for (uint32_t w = 0; w < s->stats.threads; w++) {
            const double *t = s->stats.thread_phase_seconds + 3 * (size_t)w;
            const double *m = s->stats.thread_phase_median + 3 * (size_t)w;
            const double *sl = s->stats.thread_slow_steps + 3 * (size_t)w;
            json_array_append_new(th, json_pack("{s:f,s:f,s:f,s:{s:f,s:f,s:f},s:{s:f,s:I,s:f}}", "update", t[0],
                                                "route", t[1], "record_and_wait", t[2], "median_step", "update",
                                                m[0], "route", m[1], "record_and_wait", m[2], "whole_step",
                                                "median", sl[0], "slow_steps", (json_int_t)sl[1],
                                                "slow_seconds_beyond_median", sl[2]));
        }
        json_object_set_new(pr, "threads", th);
        json_object_set_new(o, "profile_seconds", pr);
    }
    char *txt = json_dumps(o, (indent ? JSON_INDENT(2) : JSON_COMPACT) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(o);
    return txt;
}

void sm_sim_set_setup_seconds(sm_sim_t *s, double secs)
{
    s->stats.setup_seconds = secs;
}

int sm_sim_write_outputs(sm_sim_t *s, sm_errbuf_t *eb)
{
    if (!s->opts.out_dir || !s->out_part[0])
        return 0;
    json_t *traffic = sm__traffic_json(s);
    char *summary = sm_sim_summary_json(s, 1);
    int rc = 0;
    if (!traffic || !summary) {
        rc = sm_errorf(eb, SM_ENOMEM, "out of memory writing the outputs");
    } else if (json_dump_file(traffic, s->out_part[SM__OUT_TRAFFIC], JSON_INDENT(1) | JSON_PRESERVE_ORDER) != 0) {
        rc = sm_errorf(eb, SM_EIO, "--out '%s': cannot write traffic.json", s->opts.out_dir);
    } else {
        FILE *f = fopen(s->out_part[SM__OUT_SUMMARY], "w");
        int bad = !f || fputs(summary, f) < 0 || fputc('\n', f) == EOF;
        if (f)
            bad |= fclose(f) != 0;
        if (bad)
            rc = sm_errorf(eb, SM_EIO, "--out '%s': cannot write summary.json", s->opts.out_dir);
    }
    json_decref(traffic);
    free(summary);
    static int (*const writers[])(sm_sim_t *, const char *) = {sm__write_raster, sm__write_traffic_svg,
                                                               sm__write_vcd, sm__write_trace, sm__write_latency};
    for (int k = SM__OUT_RASTER; k < SM__NOUT && rc == 0; k++) {
        errno = 0;
        if (s->out_on[k] && writers[k - SM__OUT_RASTER](s, s->out_part[k]) != 0)
            rc = sm_errorf(eb, SM_EIO, "--out '%s': cannot write %s: %s", s->opts.out_dir, sm__out_names[k],
                           errno ? strerror(errno) : "out of memory or a write error");
    }
    if (rc == 0)
        rc = sm__out_blocked(s, eb);
    for (int k = 0; k < SM__NOUT && rc == 0; k++)
        if (s->out_on[k] && rename(s->out_part[k], s->out_final[k]) != 0)
            rc = sm_errorf(eb, SM_EIO, "--out '%s': cannot rename %s into place: %s", s->opts.out_dir,
                           s->out_final[k], strerror(errno));
    for (int k = 0; k < SM__NOUT && rc == 0; k++) /* an earlier run's output that this run does not write (trace.json
                                                  * of a --timing run, say) would not describe this run */
        if (!s->out_on[k])
            (void)remove(s->out_final[k]);
    if (rc)
        sm__out_abort(s);
    sm__signals_back(s);
    return rc;
}
