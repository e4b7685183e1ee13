/* loader/input.c: input spikes for spike_source populations: a "step,neuron" CSV file, checked line by line (errors
 * as file:line and the rule broken), sorted and handed to the populations it addresses. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spikemesh/loader.h"

typedef struct {
    uint64_t step;
    uint64_t neuron; /* index among all spike_source neurons */
    uint64_t line;
} sm__ev_t;

static int sm__ev_cmp(const void *pa, const void *pb)
{
    const sm__ev_t *a = pa, *b = pb;
    if (a->step != b->step)
        return a->step < b->step ? -1 : 1;
    if (a->neuron != b->neuron)
        return a->neuron < b->neuron ? -1 : 1;
    return (a->line > b->line) - (a->line < b->line);
}

/* A whole number of decimal digits at *s, below 2^63; advances *s. Returns 0, or -1 when there is none or it is
 * too large. */
static int sm__digits(const char **s, uint64_t *v)
{
    const char *p = *s;
    uint64_t x = 0;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (x > (UINT64_C(1) << 63) / 10)
            return -1;
        x = x * 10 + (uint64_t)(*p - '0');
        if (x >= UINT64_C(1) << 63)
            return -1;
    }
    *s = p;
    *v = x;
    return 0;
}

/* A line as messages quote it: its first 40 bytes, control bytes and NULs as '?'. Returns out. */
static const char *sm__shown(char out[41], const char *line, size_t len)
{
    size_t k = 0;
    for (; k < 40 && k < len; k++)
        out[k] = (unsigned char)line[k] < 0x20 || line[k] == 0x7f ? '?' : line[k];
    out[k] = '\0';
    return out;
}

int sm_net_load_input(sm_net_t *net, const char *path, sm_errbuf_t *eb)
{
    uint64_t nin = 0;
    for (uint32_t p = 0; p < net->npops; p++)
        if (net->pops[p].model == SM_MODEL_SPIKE_SOURCE)
            nin += net->pops[p].size;
    if (nin == 0)
        return sm_errorf(eb, SM_EINVAL, "%s: network '%s' has no spike_source population (a NIR Input node) to take "
                         "input spikes", path, net->name);
    FILE *f = fopen(path, "r");
    if (!f)
        return sm_errorf(eb, SM_EIO, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    /* spikes at or past the run's last step are checked but not kept (net->duration > 0 says how long it is) */
    const double steps = net->duration > 0 && net->dt > 0 ? floor(net->duration / net->dt + 1e-9) : -1.0;
    const uint64_t keep_below = steps >= 0 && steps < 1.8e19 ? (uint64_t)steps : UINT64_MAX;
    uint64_t last_step = 0;
    uint64_t ln = 0, n = 0, cap = 0;
    sm__ev_t *ev = NULL;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &lcap, f)) != -1) {
        ln++;
        if (len > 0 && line[len - 1] == '\n') /* one line ending: \n or \r\n */
            line[--len] = '\0';
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        char shown[41];
        if (ln == 1) {
            if (strcmp(line, "step,neuron") != 0)
                rc = sm_errorf(eb, SM_EPARSE, "%s:1: the first line must be the header \"step,neuron\", got \"%s\"",
                               path, sm__shown(shown, line, (size_t)len));
            continue;
        }
        const char *s = line;
        uint64_t step, neuron;
        if ((size_t)len != strlen(line) || sm__digits(&s, &step) != 0 || *s++ != ',' ||
            sm__digits(&s, &neuron) != 0 || *s != '\0') {
            rc = sm_errorf(eb, SM_EPARSE, "%s:%llu: expected STEP,NEURON (two whole numbers below 2^63), got \"%s\"",
                           path, (unsigned long long)ln, sm__shown(shown, line, (size_t)len));
            break;
        }
        if (neuron >= nin) {
            rc = sm_errorf(eb, SM_ERANGE, "%s:%llu: neuron %llu is out of range: the input populations have %llu "
                           "neurons (0 to %llu)", path, (unsigned long long)ln, (unsigned long long)neuron,
                           (unsigned long long)nin, (unsigned long long)(nin - 1));
            break;
        }
        if (ln > 2 && step < last_step) {
            rc = sm_errorf(eb, SM_EPARSE, "%s:%llu: step %llu comes after step %llu; lines must be in order of step",
                           path, (unsigned long long)ln, (unsigned long long)step, (unsigned long long)last_step);
            break;
        }
        last_step = step;
        if (step >= keep_below)
            continue;
        if (n == cap) {
            uint64_t nc = cap ? 2 * cap : 1024;
            sm__ev_t *ne = realloc(ev, nc * sizeof *ne);
            if (!ne) {
                rc = sm_errorf(eb, SM_ENOMEM, "%s:%llu: out of memory for %llu spikes", path, (unsigned long long)ln,
                               (unsigned long long)nc);
                break;
            }
            ev = ne;
            cap = nc;
        }
        ev[n].step = step;
        ev[n].neuron = neuron;
        ev[n].line = ln;
        n++;
    }
    if (rc == 0 && ferror(f))
        rc = sm_errorf(eb, SM_EIO, "%s: read error: %s", path, strerror(errno));
    if (rc == 0 && ln == 0)
        rc = sm_errorf(eb, SM_EPARSE, "%s:1: the file is empty; the first line must be the header \"step,neuron\"",
                       path);
    free(line);
    fclose(f);
    if (rc == 0 && n > 1)
        qsort(ev, n, sizeof *ev, sm__ev_cmp);
    for (uint64_t k = 1; k < n && rc == 0; k++)
        if (ev[k].step == ev[k - 1].step && ev[k].neuron == ev[k - 1].neuron)
            rc = sm_errorf(eb, SM_EPARSE, "%s:%llu: neuron %llu spikes twice in step %llu (also on line %llu)", path,
                           (unsigned long long)ev[k].line, (unsigned long long)ev[k].neuron,
                           (unsigned long long)ev[k].step, (unsigned long long)ev[k - 1].line);

    /* Hand each population its spikes (local indices), still in order of step and neuron. */
    sm_input_spike_t **lists = rc == 0 ? calloc(net->npops, sizeof *lists) : NULL;
    uint64_t *counts = rc == 0 ? calloc(net->npops, sizeof *counts) : NULL;
    if (rc == 0 && (!lists || !counts))
        rc = sm_errorf(eb, SM_ENOMEM, "%s: out of memory", path);
    uint64_t base = 0;
    for (uint32_t p = 0; p < net->npops && rc == 0; p++) {
        const sm_pop_t *pop = &net->pops[p];
        if (pop->model != SM_MODEL_SPIKE_SOURCE)
            continue;
        uint64_t c = 0;
        for (uint64_t k = 0; k < n; k++)
            c += ev[k].neuron >= base && ev[k].neuron < base + pop->size;
        lists[p] = malloc((c ? c : 1) * sizeof **lists);
        if (!lists[p]) {
            rc = sm_errorf(eb, SM_ENOMEM, "%s: out of memory", path);
            break;
        }
        for (uint64_t k = 0; k < n; k++)
            if (ev[k].neuron >= base && ev[k].neuron < base + pop->size) {
                lists[p][counts[p]].step = ev[k].step;
                lists[p][counts[p]].neuron = (uint32_t)(ev[k].neuron - base);
                counts[p]++;
            }
        base += pop->size;
    }
    for (uint32_t p = 0; p < net->npops && lists; p++) {
        if (net->pops[p].model != SM_MODEL_SPIKE_SOURCE)
            continue;
        if (rc) {
            free(lists[p]);
            continue;
        }
        free(net->pops[p].spikes);
        net->pops[p].spikes = lists[p];
        net->pops[p].nspikes = counts[p];
    }
    free(lists);
    free(counts);
    free(ev);
    return rc;
}
