/* runtime/viz.c: the pictures and traces of a run: raster.svg, traffic.svg, spikes.vcd, trace.json (Perfetto /
 * Chrome trace events) and latency.csv. Each writer fills a file given by name and reports failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/sim_internal.h"

static const char *const sm__palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                          "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"};

/* XML text: escapes the five special characters; control characters, which XML 1.0 does not allow even
 * escaped (tab, newline and carriage return aside), become '?'. */
static void sm__xml(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        case '\t': case '\n': case '\r': fputc(*s, f); break;
        default: fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
        }
    }
}

/* A JSON string's contents: quotes, backslashes and control characters escaped. */
static void sm__json_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
}

static int sm__close(FILE *f)
{
    int bad = ferror(f);
    return (fclose(f) != 0 || bad) ? -1 : 0;
}

int sm__write_raster(sm_sim_t *s, const char *path)
{
    const sm_net_t *net = s->net;
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    /* rows: the drawn neurons of each population, stacked in population order */
    uint32_t rows = 0, *row0 = malloc((net->npops + 1) * sizeof *row0);
    if (!row0) {
        fclose(f);
        return -1;
    }
    for (uint32_t p = 0; p < net->npops; p++) {
        row0[p] = rows;
        rows += s->raster_rows[p];
    }
    double W = 900, H = 520, ml = 70, mr = 150, mt = 40, mb = 50;
    double pw = W - ml - mr, ph = H - mt - mb, T = (double)(s->step ? s->step : 1) * net->dt;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
               "font-family=\"sans-serif\" font-size=\"12\">\n", W, H, W, H);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n<text x=\"%.0f\" y=\"24\" font-size=\"15\">"
               "Spike raster: ", ml);
    sm__xml(f, net->name);
    fprintf(f, " (%llu spikes drawn%s)</text>\n", (unsigned long long)s->nraster,
            s->raster_truncated ? "; later spikes left out: over the drawing limit" : "");
    fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#444\"/>\n", ml, mt,
            pw, ph);
    for (int k = 0; k <= 5; k++) { /* time axis */
        double x = ml + pw * k / 5.0;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#444\"/>", x, mt + ph, x, mt + ph + 5);
        fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%.4g</text>\n", x, mt + ph + 18, T * k / 5.0);
    }
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">time (ms)</text>\n", ml + pw / 2, H - 10);
    fprintf(f, "<text x=\"18\" y=\"%.0f\" transform=\"rotate(-90 18 %.0f)\" text-anchor=\"middle\">neuron (drawn "
               "rows)</text>\n", mt + ph / 2, mt + ph / 2);
    double dy = rows ? ph / rows : ph, dot = dy < 1.6 ? 1.6 : dy > 4 ? 4 : dy;
    for (uint32_t p = 0; p < net->npops; p++) {
        const char *col = sm__palette[p % 10];
        fprintf(f, "<g fill=\"%s\">\n", col);
        for (uint64_t k = 0; k < s->nraster; k++) {
            uint32_t id = s->raster_ev[k].id;
            if (id < net->pops[p].first || id >= net->pops[p].first + s->raster_rows[p])
                continue;
            double x = ml + pw * ((double)s->raster_ev[k].step * net->dt) / T;
            double y = mt + dy * (row0[p] + (id - net->pops[p].first));
            fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/>\n", x, y, 1.8, dot);
        }
        fprintf(f, "</g>\n");
        double ly = mt + 10 + 18.0 * p;
        fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%.0f\" y=\"%.0f\">",
                W - mr + 15, ly, col, W - mr + 30, ly + 9);
        sm__xml(f, net->pops[p].name);
        fprintf(f, " (%u of %u)</text>\n", s->raster_rows[p], net->pops[p].size);
    }
    fprintf(f, "</svg>\n");
    free(row0);
    return sm__close(f);
}

/* A colour from white-blue (0) to red (1). */
static void sm__heat(double v, char *out, size_t n)
{
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    int r = (int)(230 * v + 25), g = (int)(120 * (1 - v) + 40), b = (int)(220 * (1 - v) + 30);
    snprintf(out, n, "#%02x%02x%02x", r, g, b);
}

int sm__write_traffic_svg(sm_sim_t *s, const char *path)
{
    const sm_deploy_t *d = s->d;
    const sm_mesh_t *m = &d->mesh;
    sm_timing_t tm;
    int timed = sm_sim_timing(s, &tm) == 0 && tm.noc;
    uint32_t tiles = sm_mesh_tiles(m), W = m->width, H = m->height;
    double cell = W * H > 400 ? 24 : 64, pad = 50, legend = 260;
    double SW = pad * 2 + cell * W + legend, SH = pad * 2 + cell * H + 20;
    uint64_t lmax = 1, rmax = 1;
    for (uint32_t i = 0; i < tiles * SM_NDIRS; i++)
        if (m->link_packets[i] > lmax)
            lmax = m->link_packets[i];
    for (uint32_t t = 0; t < tiles; t++) {
        uint64_t v = timed ? sm_noc_peak_queue(tm.noc, t) : m->router_packets[t];
        if (v > rmax)
            rmax = v;
    }
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
               "font-family=\"sans-serif\" font-size=\"11\">\n", SW, SH, SW, SH);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n<text x=\"%.0f\" y=\"22\" font-size=\"15\">"
               "Mesh traffic: ", pad);
    sm__xml(f, s->net->name);
    fprintf(f, " on ");
    sm__xml(f, d->chip.name);
    fprintf(f, " (%ux%u tiles)</text>\n", W, H);
    /* y grows northwards: row y is drawn at the bottom for y = 0 */
#define SM__CX(t) (pad + cell * ((t) % W) + cell / 2)
#define SM__CY(t) (pad + cell * (H - 1 - (t) / W) + cell / 2)
    char col[16];
    for (uint32_t t = 0; t < tiles; t++) {
        for (int dd = 0; dd < SM_NDIRS; dd++) {
            uint32_t nb = sm_mesh_neighbor(m, t, dd);
            if (nb == UINT32_MAX)
                continue;
            uint64_t v = m->link_packets[(size_t)t * SM_NDIRS + (uint32_t)dd];
            double frac = (double)v / (double)lmax, off = cell * 0.12 * (dd < 2 ? -1 : 1);
            int horiz = dd == SM_DIR_E || dd == SM_DIR_W;
            double x1 = SM__CX(t) + (horiz ? 0 : off), y1 = SM__CY(t) + (horiz ? off : 0);
            double x2 = SM__CX(nb) + (horiz ? 0 : off), y2 = SM__CY(nb) + (horiz ? off : 0);
            sm__heat(frac, col, sizeof col);
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"%.1f\">"
                       "<title>(%u,%u)-&gt;(%u,%u): %llu packets</title></line>\n",
                    x1, y1, x2, y2, v ? col : "#dddddd", 1.0 + 5.0 * frac, t % W, t / W, nb % W, nb / W,
                    (unsigned long long)v);
            if (cell >= 60 && W <= 8 && H <= 8 && v > 0)
                fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"9\" text-anchor=\"middle\">%llu</text>\n",
                        (x1 + x2) / 2 + (horiz ? 0 : off * 1.6), (y1 + y2) / 2 + (horiz ? off * 1.6 + 3 : 3),
                        (unsigned long long)v);
        }
    }
    for (uint32_t t = 0; t < tiles; t++) {
        uint64_t v = timed ? sm_noc_peak_queue(tm.noc, t) : m->router_packets[t];
        sm__heat((double)v / (double)rmax, col, sizeof col);
        double r = cell * 0.22;
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" rx=\"3\" fill=\"%s\" stroke=\"#333\">"
                   "<title>router (%u,%u): %llu %s</title></rect>\n",
                SM__CX(t) - r, SM__CY(t) - r, 2 * r, 2 * r, col, t % W, t / W, (unsigned long long)v,
                timed ? "packets peak queue" : "packets");
        if (cell >= 60)
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"9\" text-anchor=\"middle\">%llu</text>\n", SM__CX(t),
                    SM__CY(t) + 3, (unsigned long long)v);
    }
#undef SM__CX
#undef SM__CY
    double lx = pad * 1.5 + cell * W;
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\">links: packets (max %llu)</text>\n", lx, pad + 10,
            (unsigned long long)lmax);
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\">routers: %s (max %llu)</text>\n", lx, pad + 28,
            timed ? "peak queue, packets" : "packets handled", (unsigned long long)rmax);
    for (int k = 0; k <= 10; k++) {
        sm__heat(k / 10.0, col, sizeof col);
        fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"12\" height=\"10\" fill=\"%s\"/>", lx + 12.0 * k, pad + 40, col);
    }
    fprintf(f, "\n<text x=\"%.0f\" y=\"%.0f\">0</text><text x=\"%.0f\" y=\"%.0f\">max</text>\n", lx, pad + 64,
            lx + 110, pad + 64);
    fprintf(f, "</svg>\n");
    return sm__close(f);
}

/* VCD identifiers: printable characters from '!' to '~', base 94. */
static void sm__vcd_id(uint32_t k, char *out)
{
    int n = 0;
    do {
        out[n++] = (char)('!' + k % 94);
        k /= 94;
    } while (k);
    out[n] = '\0';
}

/* The VCD time unit: ns (the usual one) when a step is a whole number of ns and the run fits 2^63 of them; a
 * finer unit when a step is not a whole number of ns (0.1 ps steps all fell on #0), a coarser one when the run
 * is too long for 64-bit times in ns (huge dt_ms wrapped around). A step below 1 fs, or a run past 2^63 s, is
 * beyond every VCD unit: times then count steps (in_steps, said in a comment). */
typedef struct {
    const char *unit;
    double per_step; /* units per step */
    uint64_t whole;  /* per_step when it is a whole number, else 0 */
    int in_steps;
} sm__vcd_clock_t;

/* x units per step as a whole number, when x is one closely enough that steps of it stay within half a unit of
 * the exact times over the whole run; else 0 */
static uint64_t sm__vcd_whole(double x, uint64_t steps)
{
    double r = nearbyint(x);
    return x >= 1.0 && fabs(x - r) * ((double)steps + 1.0) < 0.5 ? (uint64_t)r : 0;
}

static sm__vcd_clock_t sm__vcd_clock(double dt_ms, uint64_t steps)
{
    static const struct {
        const char *unit;
        double per_ms;
    } u[] = {{"1 s", 1e-3}, {"1 ms", 1.0}, {"1 us", 1e3}, {"1 ns", 1e6}, {"1 ps", 1e9}, {"1 fs", 1e12}};
    const double end = (double)steps + 1.0, most = 9.0e18; /* times stay below 2^63 */
    int k = 3;
    while (k < 5 && !sm__vcd_whole(dt_ms * u[k].per_ms, steps))
        k++;
    while (k > 0 && end * dt_ms * u[k].per_ms > most)
        k--;
    sm__vcd_clock_t c = {u[k].unit, dt_ms * u[k].per_ms, 0, 0};
    if (c.per_step < 1.0 || end * c.per_step > most)
        c = (sm__vcd_clock_t){"1 ns", 1.0, 1, 1};
    else
        c.whole = sm__vcd_whole(c.per_step, steps);
    return c;
}

static unsigned long long sm__vcd_time(const sm__vcd_clock_t *c, uint64_t step)
{
    return c->whole ? (unsigned long long)(step * c->whole) : (unsigned long long)llround((double)step * c->per_step);
}

int sm__write_vcd(sm_sim_t *s, const char *path)
{
    const sm_net_t *net = s->net;
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    const sm__vcd_clock_t clk = sm__vcd_clock(net->dt, s->step);
    char id[8];
    fprintf(f, "$version spikemesh %s $end\n$comment network ", "0.1.0");
    for (const char *c = net->name; *c; c++) /* a '$' could spell the $end that closes the comment */
        fputc(*c == '$' ? '_' : *c, f);
    fprintf(f, ": one wire per probed neuron, high for the step in which it spikes $end\n");
    if (clk.in_steps)
        fprintf(f, "$comment times count steps of %g ms: no VCD time unit holds that step for this run $end\n",
                net->dt);
    fprintf(f, "$timescale %s $end\n$scope module spikemesh $end\n", clk.unit);
    for (uint32_t k = 0; k < s->nprobes; k++) {
        uint32_t nid = s->probes[k], p = s->d->pieces[s->d->piece_of[nid]].pop;
        sm__vcd_id(k, id);
        fprintf(f, "$var wire 1 %s %s_%u $end\n", id, net->pops[p].name, nid - net->pops[p].first);
    }
    fprintf(f, "$upscope $end\n$enddefinitions $end\n#0\n$dumpvars\n");
    for (uint32_t k = 0; k < s->nprobes; k++) {
        sm__vcd_id(k, id);
        fprintf(f, "0%s\n", id);
    }
    fprintf(f, "$end\n");
    /* Events come in step order; a wire is high for the step in which its neuron spikes (from that step's time
     * to the next step's), and consecutive spikes keep it high. */
    uint8_t *high = calloc(s->nprobes + 1, 1), *now = calloc(s->nprobes + 1, 1);
    if (!high || !now) {
        free(high);
        free(now);
        fclose(f);
        return -1;
    }
    uint64_t k = 0, prev = 0;
    int any_high = 0;
    while (k < s->nvcd) {
        uint64_t step = s->vcd_ev[k].step;
        memset(now, 0, s->nprobes);
        while (k < s->nvcd && s->vcd_ev[k].step == step)
            now[s->vcd_ev[k++].id] = 1;
        if (any_high && step > prev + 1) { /* a gap: what was high falls one step after it rose */
            fprintf(f, "#%llu\n", sm__vcd_time(&clk, prev + 1));
            for (uint32_t q = 0; q < s->nprobes; q++)
                if (high[q]) {
                    sm__vcd_id(q, id);
                    fprintf(f, "0%s\n", id);
                    high[q] = 0;
                }
        }
        int stamped = 0;
        any_high = 0;
        for (uint32_t q = 0; q < s->nprobes; q++) {
            if (high[q] != now[q]) {
                if (!stamped) {
                    fprintf(f, "#%llu\n", sm__vcd_time(&clk, step));
                    stamped = 1;
                }
                sm__vcd_id(q, id);
                fprintf(f, "%c%s\n", now[q] ? '1' : '0', id);
            }
            high[q] = now[q];
            any_high |= now[q];
        }
        prev = step;
    }
    if (any_high) {
        fprintf(f, "#%llu\n", sm__vcd_time(&clk, prev + 1));
        for (uint32_t q = 0; q < s->nprobes; q++)
            if (high[q]) {
                sm__vcd_id(q, id);
                fprintf(f, "0%s\n", id);
            }
    }
    if (sm__vcd_time(&clk, s->step) > sm__vcd_time(&clk, prev + 1))
        fprintf(f, "#%llu\n", sm__vcd_time(&clk, s->step));
    free(high);
    free(now);
    return sm__close(f);
}

int sm__write_trace(sm_sim_t *s, const char *path)
{
    const sm_deploy_t *d = s->d;
    const sm__trace_t *tr = &s->trace;
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    uint32_t nc = tr->ncores;
    fprintf(f, "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"network\":\"");
    sm__json_text(f, s->net->name);
    fprintf(f, "\",\"steps_traced\":%llu,\"cores_traced\":%u,\"cores\":%u,\"time\":\"modelled chip time\"},"
               "\"traceEvents\":[\n", (unsigned long long)tr->nsteps, nc, d->ncores);
    fprintf(f, "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"tid\":0,\"args\":{\"name\":\"chip ");
    sm__json_text(f, d->chip.name);
    fprintf(f, "\"}}");
    for (uint32_t c = 0; c < nc; c++)
        fprintf(f, ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":%u,\"args\":{\"name\":\"core %u "
                   "tile (%u,%u)\"}}", c + 1, c, d->cores[c].tile % d->chip.width, d->cores[c].tile / d->chip.width);
    fprintf(f, ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":%u,\"args\":{\"name\":\"mesh\"}}", nc + 1);
    fprintf(f, ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":%u,\"args\":{\"name\":\"barrier\"}}",
            nc + 2);
    double t0 = 0; /* microseconds of modelled time */
    for (uint64_t k = 0; k < tr->nsteps; k++) {
        const sm__trace_step_t *st = &tr->steps[k];
        fprintf(f, ",\n{\"name\":\"mesh load\",\"ph\":\"C\",\"pid\":1,\"ts\":%.4f,\"args\":{\"packets\":%llu,"
                   "\"link traversals\":%llu}}",
                t0, (unsigned long long)st->packets, (unsigned long long)st->hops);
        for (uint32_t c = 0; c < nc; c++)
            fprintf(f, ",\n{\"name\":\"step %llu\",\"cat\":\"core\",\"ph\":\"X\",\"pid\":1,\"tid\":%u,\"ts\":%.4f,"
                       "\"dur\":%.4f}", (unsigned long long)st->step, c + 1, t0,
                    tr->core_ns[k * nc + c] * 1e-3);
        fprintf(f, ",\n{\"name\":\"drain\",\"cat\":\"mesh\",\"ph\":\"X\",\"pid\":1,\"tid\":%u,\"ts\":%.4f,\"dur\":"
                   "%.4f,\"args\":{\"step\":%llu}}", nc + 1, t0 + st->core_ns * 1e-3, st->drain_ns * 1e-3,
                (unsigned long long)st->step);
        fprintf(f, ",\n{\"name\":\"barrier\",\"cat\":\"barrier\",\"ph\":\"X\",\"pid\":1,\"tid\":%u,\"ts\":%.4f,"
                   "\"dur\":%.4f,\"args\":{\"step\":%llu}}", nc + 2, t0 + (st->core_ns + st->drain_ns) * 1e-3,
                st->barrier_ns * 1e-3, (unsigned long long)st->step);
        t0 += (st->core_ns + st->drain_ns + st->barrier_ns) * 1e-3;
    }
    fprintf(f, "\n]}\n");
    return sm__close(f);
}

int sm__write_latency(sm_sim_t *s, const char *path)
{
    const sm__trace_t *tr = &s->trace;
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "latency_cycles,deliveries\n");
    for (uint64_t k = 0; k < tr->nlat; k++)
        if (tr->lat_hist[k])
            fprintf(f, "%llu,%llu\n", (unsigned long long)k, (unsigned long long)tr->lat_hist[k]);
    return sm__close(f);
}

/* Record-phase capture (worker 0, spikes of one worker in order): the raster's and the VCD's spikes. */
void sm__capture(sm_sim_t *s, uint64_t step, const uint32_t *ids, uint32_t n)
{
    const sm_deploy_t *d = s->d;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t id = ids[k], p = d->pieces[d->piece_of[id]].pop;
        if (id - s->net->pops[p].first < s->raster_rows[p]) {
            if (s->nraster == s->raster_cap) {
                uint64_t nc = s->raster_cap ? s->raster_cap * 2 : 4096;
                sm__ev_t *ne = nc <= SM__RASTER_MAX ? realloc(s->raster_ev, nc * sizeof *ne) : NULL;
                if (ne) {
                    s->raster_ev = ne;
                    s->raster_cap = nc;
                }
            }
            if (s->nraster < s->raster_cap)
                s->raster_ev[s->nraster++] = (sm__ev_t){step, id};
            else
                s->raster_truncated = 1;
        }
        uint32_t lo = 0, hi = s->nprobes;
        while (lo < hi) {
            uint32_t mid = (lo + hi) / 2;
            if (s->probes[mid] < id)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < s->nprobes && s->probes[lo] == id) {
            if (s->nvcd == s->vcd_cap) {
                uint64_t nc = s->vcd_cap ? s->vcd_cap * 2 : 4096;
                sm__ev_t *ne = nc <= SM__VCD_MAX ? realloc(s->vcd_ev, nc * sizeof *ne) : NULL;
                if (ne) {
                    s->vcd_ev = ne;
                    s->vcd_cap = nc;
                }
            }
            if (s->nvcd < s->vcd_cap)
                s->vcd_ev[s->nvcd++] = (sm__ev_t){step, lo};
            else
                s->vcd_truncated = 1;
        }
    }
}
