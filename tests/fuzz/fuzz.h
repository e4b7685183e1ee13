/* tests/fuzz/fuzz.h: shared helpers of the libFuzzer harnesses (fuzz_*.c): the input as a temporary file for the
 * loaders that read paths, checks that a loader's result is well formed, and deployment of small networks. Built
 * only by `make fuzz`; every helper frees what it allocates, so each input leaves nothing behind. */
#ifndef SPIKEMESH_TESTS_FUZZ_H
#define SPIKEMESH_TESTS_FUZZ_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spikemesh/spikemesh.h"

/* Deployment is tried only on networks at most this large, so that one input stays fast. */
#define FZ_DEPLOY_MAX_NEURONS 5000u
#define FZ_DEPLOY_MAX_SYNAPSES 200000.0

/* Stops the run (libFuzzer reports it as a crash, with the input) when cond is false. */
#define FZ_CHECK(cond, ...)                                                                          \
    do {                                                                                            \
        if (!(cond)) {                                                                              \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);                \
            fprintf(stderr, __VA_ARGS__);                                                           \
            fputc('\n', stderr);                                                                    \
            abort();                                                                                \
        }                                                                                           \
    } while (0)

/* Writes data to a new temporary file; path gets its name (unlink it when done). Returns 0, or -1. */
static inline int fz_write_temp(const uint8_t *data, size_t size, char path[64], const char *tag)
{
    snprintf(path, 64, "/tmp/spikemesh-fuzz-%s-XXXXXX", tag);
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, data + done, size - done);
        if (w <= 0) {
            close(fd);
            unlink(path);
            return -1;
        }
        done += (size_t)w;
    }
    close(fd);
    return 0;
}

/* With FUZZ_VERBOSE set in the environment (running a harness on given files), every result is printed. */
static inline int fz_verbose(void)
{
    return getenv("FUZZ_VERBOSE") != NULL;
}

/* A refusal must be a negative code with a message, recorded in eb. */
static inline void fz_check_error(int rc, const sm_errbuf_t *eb)
{
    if (fz_verbose())
        fprintf(stderr, "refused (%d): %s\n", rc, eb->msg);
    FZ_CHECK(rc < 0, "return code %d", rc);
    FZ_CHECK(eb->code == rc, "eb.code %d, return code %d", eb->code, rc);
    FZ_CHECK(eb->msg[0] != '\0', "empty error message for code %d", rc);
}

/* The invariants every loaded network keeps (docs/network-format.md, docs/nir.md). */
static inline void fz_check_net(const sm_net_t *net)
{
    uint64_t total = 0;
    if (fz_verbose())
        fprintf(stderr, "network '%s': %u populations, %u neurons, %u projections\n", net->name, net->npops, net->n,
                net->nprojs);
    FZ_CHECK(net->dt > 0.0 && isfinite(net->dt), "dt %g", net->dt);
    FZ_CHECK(net->duration >= 0.0 && isfinite(net->duration), "duration %g", net->duration);
    FZ_CHECK(net->npops >= 1 && net->pops, "%u populations", net->npops);
    for (uint32_t p = 0; p < net->npops; p++) {
        const sm_pop_t *pop = &net->pops[p];
        const sm_lif_params_t *l = &pop->lif;
        FZ_CHECK(pop->first == total, "population %u starts at %u, not %llu", p, pop->first,
                 (unsigned long long)total);
        FZ_CHECK(pop->size >= 1 && pop->size <= SM_SYN_MAX_NEURONS, "population %u has %u neurons", p, pop->size);
        FZ_CHECK(memchr(pop->name, '\0', sizeof pop->name) && pop->name[0], "population %u: bad name", p);
        for (uint32_t q = 0; q < p; q++)
            FZ_CHECK(strcmp(net->pops[q].name, pop->name) != 0, "population name \"%s\" twice", pop->name);
        total += pop->size;
        FZ_CHECK(isfinite(pop->v_init_lo) && isfinite(pop->v_init_hi) && pop->v_init_lo <= pop->v_init_hi,
                 "population %u: v_init [%g, %g]", p, pop->v_init_lo, pop->v_init_hi);
        if (pop->model == SM_MODEL_LIF) {
            FZ_CHECK(l->tau_m > 0 && l->tau_e > 0 && l->tau_i > 0 && l->t_ref >= 0, "population %u: lif params", p);
            FZ_CHECK(isfinite(l->tau_m) && isfinite(l->tau_e) && isfinite(l->tau_i) && isfinite(l->t_ref) &&
                         isfinite(l->v_thresh) && isfinite(l->v_reset) && isfinite(l->v_rest) && isfinite(l->i_bias),
                     "population %u: a lif parameter is not finite", p);
            /* the derived constants: refused with a message, or computed */
            sm_lif_consts_t c;
            sm_errbuf_t eb = {0};
            int rc = sm_lif_consts(l, net->dt, &c, &eb);
            if (rc)
                fz_check_error(rc, &eb);
        } else if (pop->model == SM_MODEL_POISSON) {
            FZ_CHECK(pop->rate_hz >= 0 && isfinite(pop->rate_hz), "population %u: rate %g", p, pop->rate_hz);
        } else {
            FZ_CHECK(pop->model == SM_MODEL_SPIKE_SOURCE, "population %u: model %d", p, (int)pop->model);
        }
        for (uint32_t i = 0; pop->drive && i < pop->size; i++)
            FZ_CHECK(isfinite(pop->drive[i]), "population %u: drive %u is %g", p, i, pop->drive[i]);
        for (uint64_t k = 0; k < pop->nspikes; k++)
            FZ_CHECK(pop->spikes[k].neuron < pop->size && (k == 0 || pop->spikes[k - 1].step <= pop->spikes[k].step),
                     "population %u: spike %llu", p, (unsigned long long)k);
    }
    FZ_CHECK(total == net->n && total <= SM_SYN_MAX_NEURONS, "n %u, sizes add up to %llu", net->n,
             (unsigned long long)total);
    FZ_CHECK(net->nprojs == 0 || net->projs, "%u projections, no array", net->nprojs);
    for (uint32_t k = 0; k < net->nprojs; k++) {
        const sm_proj_t *pr = &net->projs[k];
        FZ_CHECK(pr->pre < net->npops && pr->post < net->npops, "projection %u: %u -> %u", k, pr->pre, pr->post);
        FZ_CHECK(net->pops[pr->post].model == SM_MODEL_LIF, "projection %u: post is not lif", k);
        FZ_CHECK(pr->delay_steps >= 1 && pr->delay_steps <= SM_SYN_MAX_DELAY, "projection %u: delay %u", k,
                 pr->delay_steps);
        FZ_CHECK(isfinite(pr->weight) && fabs(pr->weight) <= 3.0e38, "projection %u: weight %g", k, pr->weight);
        if (pr->rule == SM_CONN_BERNOULLI)
            FZ_CHECK(pr->p >= 0 && pr->p <= 1, "projection %u: p %g", k, pr->p);
        if (pr->rule == SM_CONN_ONE)
            FZ_CHECK(net->pops[pr->pre].size == net->pops[pr->post].size, "projection %u: one_to_one sizes", k);
        if (pr->rule != SM_CONN_LIST)
            continue;
        FZ_CHECK(pr->npairs == 0 || pr->pairs, "projection %u: no pairs", k);
        for (uint64_t i = 0; i < pr->npairs; i++) {
            FZ_CHECK(pr->pairs[2 * i] < net->pops[pr->pre].size && pr->pairs[2 * i + 1] < net->pops[pr->post].size,
                     "projection %u: pair %llu out of range", k, (unsigned long long)i);
            FZ_CHECK(!pr->weights || isfinite(pr->weights[i]), "projection %u: weight %llu", k,
                     (unsigned long long)i);
        }
    }
}

/* Deploys a network that is small enough onto the "small" chip resized to 4x4 tiles (8192 neurons). */
static inline void fz_deploy(const sm_net_t *net, const sm_chip_t *chip_or_null)
{
    double syn = 0;
    if (net->n > FZ_DEPLOY_MAX_NEURONS)
        return;
    for (uint32_t k = 0; k < net->nprojs; k++) {
        const sm_proj_t *pr = &net->projs[k];
        double a = net->pops[pr->pre].size, b = net->pops[pr->post].size;
        syn += pr->rule == SM_CONN_BERNOULLI ? pr->p * a * b
               : pr->rule == SM_CONN_ONE     ? a
               : pr->rule == SM_CONN_LIST    ? (double)pr->npairs
                                             : a * b; /* all_to_all, and a bound for any other rule */
    }
    if (syn > FZ_DEPLOY_MAX_SYNAPSES)
        return;
    sm_chip_t chip;
    if (chip_or_null) {
        chip = *chip_or_null;
    } else {
        FZ_CHECK(sm_chip_preset("small", &chip) == 0, "no preset small");
        chip.width = chip.height = 4;
    }
    sm_deploy_t d;
    sm_errbuf_t eb = {0};
    int rc = sm_deploy_build(net, &chip, 1, &d, &eb);
    if (fz_verbose())
        fprintf(stderr, "deployment on chip '%s': %s\n", chip.name, rc ? eb.msg : "done");
    if (rc) {
        fz_check_error(rc, &eb);
        return;
    }
    FZ_CHECK(d.n == net->n && d.row && d.row[d.n] == d.nsyn, "deployment of %u neurons, %llu synapses", d.n,
             (unsigned long long)d.nsyn);
    sm_deploy_free(&d);
}

#endif
