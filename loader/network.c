/* loader/network.c: the network description: JSON parsing and validation (errors as file:line:column and
 * the rule broken) and the built-in CUBA network. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/json.h"
#include "spikemesh/loader.h"

/* The CUBA defaults (Brette et al. 2007, benchmark 2): every LIF parameter left out takes these values. */
static const sm_lif_params_t sm__lif_defaults = {
    .tau_m = 20.0, .tau_e = 5.0, .tau_i = 10.0, .v_thresh = -50.0,
    .v_reset = -60.0, .v_rest = -49.0, .t_ref = 5.0, .i_bias = 0.0,
};

void sm_net_free(sm_net_t *net)
{
    if (!net)
        return;
    for (uint32_t k = 0; k < net->nprojs; k++) {
        free(net->projs[k].pairs);
        free(net->projs[k].weights);
    }
    for (uint32_t k = 0; net->pops && k < net->npops; k++) {
        free(net->pops[k].drive);
        free(net->pops[k].spikes);
    }
    free(net->pops);
    free(net->projs);
    memset(net, 0, sizeof *net);
}

const char *sm_pop_model_name(const sm_pop_t *pop)
{
    switch (pop->model) {
    case SM_MODEL_LIF:
        return pop->lif.no_spike ? "li" : "lif";
    case SM_MODEL_POISSON:
        return "poisson";
    case SM_MODEL_SPIKE_SOURCE:
        return "spike_source";
    }
    return "?";
}

static int sm__valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= SM_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
            return 0;
    return 1;
}

static int sm__find_pop(const sm_net_t *net, const char *name)
{
    for (uint32_t i = 0; i < net->npops; i++)
        if (strcmp(net->pops[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int sm__parse_lif(sm__jctx_t *cx, json_t *params, sm_lif_params_t *p)
{
    static const char *const keys[] = {"tau_m_ms", "tau_e_ms", "tau_i_ms", "v_thresh_mV", "v_reset_mV",
                                       "v_rest_mV", "t_ref_ms", "i_bias_mV", NULL};
    int rc;
    *p = sm__lif_defaults;
    if (!params)
        return 0;
    if (!json_is_object(params))
        return sm__jerr(cx, SM_EPARSE, "must be an object of LIF parameters");
    if ((rc = sm__jcheck_keys(cx, params, keys)) != 0)
        return rc;
    if ((rc = sm__jget_pos(cx, params, "tau_m_ms", 0, p->tau_m, &p->tau_m)) != 0 ||
        (rc = sm__jget_pos(cx, params, "tau_e_ms", 0, p->tau_e, &p->tau_e)) != 0 ||
        (rc = sm__jget_pos(cx, params, "tau_i_ms", 0, p->tau_i, &p->tau_i)) != 0 ||
        (rc = sm__jget_num(cx, params, "v_thresh_mV", 0, p->v_thresh, &p->v_thresh)) != 0 ||
        (rc = sm__jget_num(cx, params, "v_reset_mV", 0, p->v_reset, &p->v_reset)) != 0 ||
        (rc = sm__jget_num(cx, params, "v_rest_mV", 0, p->v_rest, &p->v_rest)) != 0 ||
        (rc = sm__jget_num(cx, params, "t_ref_ms", 0, p->t_ref, &p->t_ref)) != 0 ||
        (rc = sm__jget_num(cx, params, "i_bias_mV", 0, p->i_bias, &p->i_bias)) != 0)
        return rc;
    if (p->t_ref < 0.0) {
        sm__jpush_key(cx, "t_ref_ms");
        rc = sm__jerr(cx, SM_ERANGE, "must be zero or positive, got %g", p->t_ref);
        sm__jpop(cx);
        return rc;
    }
    if (!isfinite(p->v_rest + p->i_bias)) { /* where v settles */
        sm__jpush_key(cx, json_object_get(params, "i_bias_mV") ? "i_bias_mV" : "v_rest_mV");
        rc = sm__jerr(cx, SM_ERANGE, "v_rest_mV + i_bias_mV (%g + %g) must be a finite number", p->v_rest, p->i_bias);
        sm__jpop(cx);
        return rc;
    }
    if (!(p->v_reset < p->v_thresh)) {
        sm__jpush_key(cx, json_object_get(params, "v_reset_mV") ? "v_reset_mV" : "v_thresh_mV");
        rc = sm__jerr(cx, SM_ERANGE, "v_reset_mV (%g) must be below v_thresh_mV (%g)", p->v_reset, p->v_thresh);
        sm__jpop(cx);
        return rc;
    }
    return 0;
}

static int sm__parse_pop(sm__jctx_t *cx, json_t *jp, sm_net_t *net, sm_pop_t *pop)
{
    static const char *const keys[] = {"name", "size", "model", "params", "v_init_mV", NULL};
    const char *name, *model;
    uint64_t size;
    int rc;
    if (!json_is_object(jp))
        return sm__jerr(cx, SM_EPARSE, "a population must be an object");
    if ((rc = sm__jcheck_keys(cx, jp, keys)) != 0 || (rc = sm__jget_str(cx, jp, "name", 1, NULL, &name)) != 0)
        return rc;
    sm__jpush_key(cx, "name");
    if (!sm__valid_name(name))
        rc = sm__jerr(cx, SM_EPARSE,
                      "population name \"%.80s\" must be 1 to %d letters, digits, '_', '-' or '.'", name,
                      SM_NAME_MAX - 1);
    else if (sm__find_pop(net, name) >= 0)
        rc = sm__jerr(cx, SM_EPARSE, "population name \"%s\" is used twice", name);
    sm__jpop(cx);
    if (rc)
        return rc;
    snprintf(pop->name, sizeof pop->name, "%s", name);
    if ((rc = sm__jget_uint(cx, jp, "size", 1, 0, 1, SM_SYN_MAX_NEURONS, &size)) != 0)
        return rc;
    pop->size = (uint32_t)size;
    if ((rc = sm__jget_str(cx, jp, "model", 0, "lif", &model)) != 0)
        return rc;
    json_t *params = json_object_get(jp, "params");
    sm__jpush_key(cx, "params");
    if (strcmp(model, "lif") == 0) {
        pop->model = SM_MODEL_LIF;
        rc = sm__parse_lif(cx, params, &pop->lif);
    } else if (strcmp(model, "poisson") == 0) {
        static const char *const pkeys[] = {"rate_hz", NULL};
        pop->model = SM_MODEL_POISSON;
        pop->lif = sm__lif_defaults;
        if (!params || !json_is_object(params))
            rc = sm__jerr(cx, SM_EPARSE, "a poisson population needs \"params\": {\"rate_hz\": ...}");
        else if ((rc = sm__jcheck_keys(cx, params, pkeys)) == 0 &&
                 (rc = sm__jget_num(cx, params, "rate_hz", 1, 0, &pop->rate_hz)) == 0 && pop->rate_hz < 0) {
            sm__jpush_key(cx, "rate_hz");
            rc = sm__jerr(cx, SM_ERANGE, "must be zero or positive, got %g", pop->rate_hz);
            sm__jpop(cx);
        }
    } else {
        sm__jpop(cx);
        sm__jpush_key(cx, "model");
        rc = sm__jerr(cx, SM_ENOENT, "unknown model \"%.80s\" (known models: lif, poisson)", model);
    }
    sm__jpop(cx);
    if (rc)
        return rc;
    /* Initial membrane potential: a number, or [lo, hi] for uniform values; default v_reset. */
    json_t *vi = json_object_get(jp, "v_init_mV");
    pop->v_init_lo = pop->v_init_hi = pop->lif.v_reset;
    if (vi) {
        sm__jpush_key(cx, "v_init_mV");
        if (json_is_number(vi)) {
            pop->v_init_lo = pop->v_init_hi = json_number_value(vi);
        } else if (json_is_array(vi) && json_array_size(vi) == 2 && json_is_number(json_array_get(vi, 0)) &&
                   json_is_number(json_array_get(vi, 1))) {
            pop->v_init_lo = json_number_value(json_array_get(vi, 0));
            pop->v_init_hi = json_number_value(json_array_get(vi, 1));
            if (!(pop->v_init_lo <= pop->v_init_hi))
                rc = sm__jerr(cx, SM_ERANGE, "[lo, hi] needs lo <= hi, got [%g, %g]", pop->v_init_lo,
                              pop->v_init_hi);
            else if (pop->model == SM_MODEL_LIF && !isfinite(pop->v_init_hi - pop->v_init_lo))
                /* lo + (hi - lo) u would be inf or NaN (sources ignore v_init_mV) */
                rc = sm__jerr(cx, SM_ERANGE, "[lo, hi] = [%g, %g]: hi - lo must be a finite number",
                              pop->v_init_lo, pop->v_init_hi);
        } else {
            rc = sm__jerr(cx, SM_EPARSE, "must be a number or [lo, hi] for a uniform draw");
        }
        sm__jpop(cx);
    }
    return rc;
}

static int sm__parse_pairs(sm__jctx_t *cx, json_t *conn, const sm_net_t *net, sm_proj_t *pr)
{
    json_t *pairs = json_object_get(conn, "pairs"), *ws = json_object_get(conn, "weights_mV");
    uint32_t npre = net->pops[pr->pre].size, npost = net->pops[pr->post].size;
    if (!pairs)
        return sm__jerr(cx, SM_EPARSE, "rule \"list\" needs \"pairs\": [[pre, post], ...]");
    sm__jpush_key(cx, "pairs");
    if (!json_is_array(pairs)) {
        int rc = sm__jerr(cx, SM_EPARSE, "must be an array of [pre, post] pairs");
        sm__jpop(cx);
        return rc;
    }
    size_t n = json_array_size(pairs);
    pr->npairs = n;
    pr->pairs = malloc((n ? n : 1) * 2 * sizeof *pr->pairs);
    if (!pr->pairs) {
        sm__jpop(cx);
        return sm__jerr(cx, SM_ENOMEM, "out of memory for %zu pairs", n);
    }
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_array_get(pairs, i);
        json_t *a = json_array_get(p, 0), *b = json_array_get(p, 1);
        if (!json_is_array(p) || json_array_size(p) != 2 || !json_is_integer(a) || !json_is_integer(b)) {
            sm__jpush_idx(cx, i);
            int rc = sm__jerr(cx, SM_EPARSE, "each pair must be [pre, post] with two whole numbers");
            sm__jpop(cx);
            sm__jpop(cx);
            return rc;
        }
        json_int_t ia = json_integer_value(a), ib = json_integer_value(b);
        if (ia < 0 || ia >= npre || ib < 0 || ib >= npost) {
            sm__jpush_idx(cx, i);
            int rc = sm__jerr(cx, SM_ERANGE, "pair [%lld, %lld] is out of range: pre < %u, post < %u",
                              (long long)ia, (long long)ib, npre, npost);
            sm__jpop(cx);
            sm__jpop(cx);
            return rc;
        }
        pr->pairs[2 * i] = (uint32_t)ia;
        pr->pairs[2 * i + 1] = (uint32_t)ib;
    }
    sm__jpop(cx);
    if (!ws)
        return 0;
    sm__jpush_key(cx, "weights_mV");
    if (!json_is_array(ws) || json_array_size(ws) != n) {
        int rc = sm__jerr(cx, SM_EPARSE, "must be an array of %zu numbers, one per pair", n);
        sm__jpop(cx);
        return rc;
    }
    pr->weights = malloc((n ? n : 1) * sizeof *pr->weights);
    if (!pr->weights) {
        sm__jpop(cx);
        return sm__jerr(cx, SM_ENOMEM, "out of memory for %zu weights", n);
    }
    for (size_t i = 0; i < n; i++) {
        json_t *w = json_array_get(ws, i);
        double d = json_is_number(w) ? json_number_value(w) : NAN;
        if (!isfinite(d) || fabs(d) > 3.0e38) {
            sm__jpush_idx(cx, i);
            int rc = !json_is_number(w) ? sm__jerr(cx, SM_EPARSE, "a weight must be a number, not %s", sm__jtype(w))
                     : !isfinite(d)        ? sm__jerr(cx, SM_ERANGE, "a weight must be a finite number")
                                           : sm__jerr(cx, SM_ERANGE, "weight %g does not fit a 32-bit float", d);
            sm__jpop(cx);
            sm__jpop(cx);
            return rc;
        }
        pr->weights[i] = (float)d;
    }
    sm__jpop(cx);
    return 0;
}

static int sm__parse_proj(sm__jctx_t *cx, json_t *jp, const sm_net_t *net, sm_proj_t *pr)
{
    static const char *const keys[] = {"pre", "post", "receptor", "connect", "weight_mV", "delay_ms", NULL};
    static const char *const ckeys[] = {"rule", "p", "autapses", "pairs", "weights_mV", "blocks", "p_next",
                                        "p_out", NULL};
    const char *pre, *post, *rec, *rule;
    int rc, autapses;
    if (!json_is_object(jp))
        return sm__jerr(cx, SM_EPARSE, "a projection must be an object");
    if ((rc = sm__jcheck_keys(cx, jp, keys)) != 0 || (rc = sm__jget_str(cx, jp, "pre", 1, NULL, &pre)) != 0 ||
        (rc = sm__jget_str(cx, jp, "post", 1, NULL, &post)) != 0)
        return rc;
    int ipre = sm__find_pop(net, pre), ipost = sm__find_pop(net, post);
    if (ipre < 0 || ipost < 0) {
        sm__jpush_key(cx, ipre < 0 ? "pre" : "post");
        rc = sm__jerr(cx, SM_ENOENT, "unknown population \"%.80s\"", ipre < 0 ? pre : post);
        sm__jpop(cx);
        return rc;
    }
    pr->pre = (uint32_t)ipre;
    pr->post = (uint32_t)ipost;
    if (net->pops[ipost].model != SM_MODEL_LIF) {
        sm__jpush_key(cx, "post");
        rc = sm__jerr(cx, SM_EINVAL, "population \"%s\" is a %s source and cannot receive synapses", post,
                      sm_pop_model_name(&net->pops[ipost]));
        sm__jpop(cx);
        return rc;
    }
    if ((rc = sm__jget_str(cx, jp, "receptor", 0, "excitatory", &rec)) != 0)
        return rc;
    if (strcmp(rec, "excitatory") == 0 || strcmp(rec, "exc") == 0)
        pr->inhibitory = 0;
    else if (strcmp(rec, "inhibitory") == 0 || strcmp(rec, "inh") == 0)
        pr->inhibitory = 1;
    else {
        sm__jpush_key(cx, "receptor");
        rc = sm__jerr(cx, SM_ENOENT, "unknown receptor \"%.80s\" (known: excitatory, inhibitory)", rec);
        sm__jpop(cx);
        return rc;
    }
    if ((rc = sm__jget_num(cx, jp, "weight_mV", 0, 0.0, &pr->weight)) != 0)
        return rc;
    if (fabs(pr->weight) > 3.0e38) {
        sm__jpush_key(cx, "weight_mV");
        rc = sm__jerr(cx, SM_ERANGE, "weight %g does not fit a 32-bit float", pr->weight);
        sm__jpop(cx);
        return rc;
    }
    double delay;
    if ((rc = sm__jget_num(cx, jp, "delay_ms", 0, net->dt, &delay)) != 0)
        return rc;
    double steps = delay / net->dt;
    sm__jpush_key(cx, "delay_ms");
    if (!(steps >= 1.0 - 1e-9))
        rc = sm__jerr(cx, SM_ERANGE, "delay %g ms is below the minimum of 1 step (%g ms)", delay, net->dt);
    else if (fabs(steps - floor(steps + 0.5)) > 1e-6)
        rc = sm__jerr(cx, SM_ERANGE, "delay %g ms is not a whole number of steps of %g ms", delay, net->dt);
    else if (steps > SM_SYN_MAX_DELAY + 0.5 && isfinite(steps))
        rc = sm__jerr(cx, SM_ERANGE, "delay %g ms is %.4g steps, more than the %u steps a synapse can hold", delay,
                      floor(steps + 0.5), SM_SYN_MAX_DELAY);
    else if (steps > SM_SYN_MAX_DELAY + 0.5)
        rc = sm__jerr(cx, SM_ERANGE, "delay %g ms is more than the %u steps of %g ms a synapse can hold", delay,
                      SM_SYN_MAX_DELAY, net->dt);
    sm__jpop(cx);
    if (rc)
        return rc;
    pr->delay_steps = (uint32_t)floor(steps + 0.5);

    json_t *conn = json_object_get(jp, "connect");
    if (!conn)
        return sm__jerr(cx, SM_EPARSE, "missing required field \"connect\"");
    sm__jpush_key(cx, "connect");
    if (!json_is_object(conn)) {
        rc = sm__jerr(cx, SM_EPARSE, "must be an object such as {\"rule\": \"bernoulli\", \"p\": 0.02}");
        goto out;
    }
    if ((rc = sm__jcheck_keys(cx, conn, ckeys)) != 0 || (rc = sm__jget_str(cx, conn, "rule", 1, NULL, &rule)) != 0 ||
        (rc = sm__jget_bool(cx, conn, "autapses", 0, 1, &autapses)) != 0)
        goto out;
    pr->autapses = (uint8_t)autapses;
    if (strcmp(rule, "bernoulli") == 0) {
        pr->rule = SM_CONN_BERNOULLI;
        if ((rc = sm__jget_num(cx, conn, "p", 1, 0, &pr->p)) != 0)
            goto out;
        if (!(pr->p >= 0.0 && pr->p <= 1.0)) {
            sm__jpush_key(cx, "p");
            rc = sm__jerr(cx, SM_ERANGE, "probability %g is outside [0, 1]", pr->p);
            sm__jpop(cx);
            goto out;
        }
    } else if (strcmp(rule, "blocks") == 0) {
        uint64_t nb;
        uint32_t lim = net->pops[pr->pre].size < net->pops[pr->post].size ? net->pops[pr->pre].size
                                                                            : net->pops[pr->post].size;
        pr->rule = SM_CONN_BLOCKS;
        if ((rc = sm__jget_uint(&*cx, conn, "blocks", 1, 0, 1, lim, &nb)) != 0)
            goto out;
        pr->blocks = (uint32_t)nb;
        const char *pk[3] = {"p", "p_next", "p_out"};
        double *pv[3] = {&pr->p, &pr->p_next, &pr->p_out};
        for (int q = 0; q < 3; q++) {
            if ((rc = sm__jget_num(cx, conn, pk[q], 0, 0.0, pv[q])) != 0)
                goto out;
            if (!(*pv[q] >= 0.0 && *pv[q] <= 1.0)) {
                sm__jpush_key(cx, pk[q]);
                rc = sm__jerr(cx, SM_ERANGE, "probability %g is outside [0, 1]", *pv[q]);
                sm__jpop(cx);
                goto out;
            }
        }
    } else if (strcmp(rule, "all_to_all") == 0) {
        pr->rule = SM_CONN_ALL;
    } else if (strcmp(rule, "one_to_one") == 0) {
        pr->rule = SM_CONN_ONE;
        if (net->pops[pr->pre].size != net->pops[pr->post].size) {
            sm__jpush_key(cx, "rule");
            rc = sm__jerr(cx, SM_EINVAL, "one_to_one needs equal sizes, got %u -> %u", net->pops[pr->pre].size,
                          net->pops[pr->post].size);
            sm__jpop(cx);
            goto out;
        }
    } else if (strcmp(rule, "list") == 0) {
        pr->rule = SM_CONN_LIST;
        if ((rc = sm__parse_pairs(cx, conn, net, pr)) != 0)
            goto out;
    } else {
        sm__jpush_key(cx, "rule");
        rc = sm__jerr(cx, SM_ENOENT, "unknown rule \"%.80s\" (known: bernoulli, blocks, all_to_all, one_to_one, list)",
                      rule);
        sm__jpop(cx);
        goto out;
    }
    if (pr->rule != SM_CONN_LIST && (json_object_get(conn, "pairs") || json_object_get(conn, "weights_mV"))) {
        sm__jpush_key(cx, json_object_get(conn, "pairs") ? "pairs" : "weights_mV");
        rc = sm__jerr(cx, SM_EPARSE, "only rule \"list\" takes pairs and weights");
        sm__jpop(cx);
        goto out;
    }
    static const char *const blocks_keys[3] = {"blocks", "p_next", "p_out"};
    for (int q = 0; q < 3 && pr->rule != SM_CONN_BLOCKS && rc == 0; q++)
        if (json_object_get(conn, blocks_keys[q])) {
            sm__jpush_key(cx, blocks_keys[q]);
            rc = sm__jerr(cx, SM_EPARSE, "only rule \"blocks\" takes blocks, p_next and p_out");
            sm__jpop(cx);
        }
out:
    sm__jpop(cx);
    return rc;
}

int sm_net_parse(const char *text, size_t len, const char *name, sm_net_t *net, sm_errbuf_t *eb)
{
    static const char *const keys[] = {"name", "dt_ms", "duration_ms", "populations", "projections", NULL};
    sm__jctx_t cx = {.file = name, .text = text, .len = len, .eb = eb};
    json_t *root = NULL;
    int rc;
    memset(net, 0, sizeof *net);
    if ((rc = sm__json_parse(&cx, &root)) != 0)
        return rc;
    const char *nname;
    if ((rc = sm__jcheck_keys(&cx, root, keys)) != 0 || (rc = sm__jget_str(&cx, root, "name", 0, "network", &nname)) != 0 ||
        (rc = sm__jget_pos(&cx, root, "dt_ms", 0, 0.1, &net->dt)) != 0 ||
        (rc = sm__jget_num(&cx, root, "duration_ms", 0, 0.0, &net->duration)) != 0)
        goto fail;
    if (strlen(nname) >= sizeof net->name) {
        sm__jpush_key(&cx, "name");
        rc = sm__jerr(&cx, SM_ERANGE, "at most %zu bytes, got %zu", sizeof net->name - 1, strlen(nname));
        goto fail;
    }
    snprintf(net->name, sizeof net->name, "%s", nname);
    if (net->duration < 0) {
        sm__jpush_key(&cx, "duration_ms");
        rc = sm__jerr(&cx, SM_ERANGE, "must be zero or positive, got %g", net->duration);
        goto fail;
    }
    if (net->duration > 0 && floor(net->duration / net->dt + 1e-9) < 1) {
        sm__jpush_key(&cx, "duration_ms");
        rc = sm__jerr(&cx, SM_ERANGE, "%g ms is shorter than one step of %g ms (0 runs no step)", net->duration,
                      net->dt);
        goto fail;
    }
    json_t *pops = json_object_get(root, "populations");
    if (!pops) {
        rc = sm__jerr(&cx, SM_EPARSE, "missing required field \"populations\"");
        goto fail;
    }
    sm__jpush_key(&cx, "populations");
    if (!json_is_array(pops) || json_array_size(pops) == 0) {
        rc = sm__jerr(&cx, SM_EPARSE, "must be a non-empty array of populations");
        goto fail;
    }
    size_t np = json_array_size(pops);
    if (np > 65536) {
        rc = sm__jerr(&cx, SM_ERANGE, "%zu populations; at most 65536 are supported", np);
        goto fail;
    }
    net->pops = calloc(np, sizeof *net->pops);
    if (!net->pops) {
        rc = sm__jerr(&cx, SM_ENOMEM, "out of memory");
        goto fail;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < np; i++) {
        sm__jpush_idx(&cx, i);
        if ((rc = sm__parse_pop(&cx, json_array_get(pops, i), net, &net->pops[i])) != 0)
            goto fail;
        net->pops[i].first = (uint32_t)total;
        total += net->pops[i].size;
        net->npops++;
        if (total > SM_SYN_MAX_NEURONS) {
            sm__jpush_key(&cx, "size");
            rc = sm__jerr(&cx, SM_ERANGE, "the network grows to %llu neurons, more than the %u supported",
                          (unsigned long long)total, SM_SYN_MAX_NEURONS);
            goto fail;
        }
        sm__jpop(&cx);
    }
    net->n = (uint32_t)total;
    sm__jpop(&cx);

    json_t *projs = json_object_get(root, "projections");
    if (projs) {
        sm__jpush_key(&cx, "projections");
        if (!json_is_array(projs)) {
            rc = sm__jerr(&cx, SM_EPARSE, "must be an array of projections");
            goto fail;
        }
        size_t nj = json_array_size(projs);
        if (nj > 1u << 20) {
            rc = sm__jerr(&cx, SM_ERANGE, "%zu projections; at most %u are supported", nj, 1u << 20);
            goto fail;
        }
        net->projs = calloc(nj ? nj : 1, sizeof *net->projs);
        if (!net->projs) {
            rc = sm__jerr(&cx, SM_ENOMEM, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < nj; i++) {
            sm__jpush_idx(&cx, i);
            rc = sm__parse_proj(&cx, json_array_get(projs, i), net, &net->projs[i]);
            net->nprojs++;
            if (rc)
                goto fail;
            sm__jpop(&cx);
        }
        sm__jpop(&cx);
    }
    json_decref(root);
    return 0;
fail:
    json_decref(root);
    sm_net_free(net);
    return rc;
}

int sm_net_load(const char *path, sm_net_t *net, sm_errbuf_t *eb)
{
    char *text;
    size_t len;
    int rc = sm__read_file(path, &text, &len, eb);
    memset(net, 0, sizeof *net);
    if (rc)
        return rc;
    rc = sm_net_parse(text, len, path, net, eb);
    free(text);
    return rc;
}

/* CUBA (Brette et al. 2007, benchmark 2) as in Brian2's examples/CUBA.py, with p = 80 / N so that every size
 * keeps 80 synapses per neuron: 80% excitatory (w_e = +1.62 mV), 20% inhibitory (w_i = -9 mV). */
int sm_net_builtin(const char *spec, sm_net_t *net, sm_errbuf_t *eb)
{
    unsigned long long n = 4000;
    memset(net, 0, sizeof *net);
    /* cluster:N: CUBA in modules of 4000 neurons, each neuron with 72 synapses in its own module and 8 in the
     * next one (a ring of modules): the same inputs per neuron as cuba:N, with local traffic. */
    int cluster = strncmp(spec, "cluster", 7) == 0 && (spec[7] == '\0' || spec[7] == ':');
    size_t plen = cluster ? 7 : 4;
    const char *kind = cluster ? "cluster" : "cuba";
    if (!cluster && (strncmp(spec, "cuba", 4) != 0 || (spec[4] != '\0' && spec[4] != ':')))
        return sm_errorf(eb, SM_ENOENT,
                         "'%s' is neither a file nor a built-in network (built in: cuba, cuba:N, cluster, cluster:N)",
                         spec);
    if (spec[plen] == ':') {
        char *end;
        const char *s = spec + plen + 1;
        if (!isdigit((unsigned char)*s))
            return sm_errorf(eb, SM_EINVAL, "'%s': N in %s:N must be a whole number of neurons", spec, kind);
        n = strtoull(s, &end, 10);
        if (*end != '\0')
            return sm_errorf(eb, SM_EINVAL, "'%s': N in %s:N must be a whole number of neurons", spec, kind);
        if (n < 5 || n > SM_SYN_MAX_NEURONS)
            return sm_errorf(eb, SM_ERANGE, "'%s': N must be between 5 and %u", spec, SM_SYN_MAX_NEURONS);
    }
    uint32_t ne = (uint32_t)(0.8 * (double)n), ni = (uint32_t)n - ne;
    double p = 80.0 / (double)n;
    if (p > 1.0)
        p = 1.0;
    net->pops = calloc(2, sizeof *net->pops);
    net->projs = calloc(4, sizeof *net->projs);
    if (!net->pops || !net->projs) {
        sm_net_free(net);
        return sm_errorf(eb, SM_ENOMEM, "out of memory");
    }
    snprintf(net->name, sizeof net->name, "%s:%llu", kind, n);
    net->dt = 0.1;
    net->duration = 1000.0;
    net->npops = 2;
    net->n = (uint32_t)n;
    for (uint32_t k = 0; k < 2; k++) {
        sm_pop_t *pp = &net->pops[k];
        snprintf(pp->name, sizeof pp->name, "%s", k == 0 ? "exc" : "inh");
        pp->size = k == 0 ? ne : ni;
        pp->first = k == 0 ? 0 : ne;
        pp->model = SM_MODEL_LIF;
        pp->lif = sm__lif_defaults;
        pp->v_init_lo = -60.0;
        pp->v_init_hi = -50.0;
    }
    net->nprojs = 4;
    for (uint32_t k = 0; k < 4; k++) {
        sm_proj_t *pr = &net->projs[k];
        pr->pre = k / 2;
        pr->post = k % 2;
        pr->inhibitory = (uint8_t)(pr->pre == 1);
        pr->autapses = 1;
        pr->rule = SM_CONN_BERNOULLI;
        pr->p = p;
        pr->weight = pr->inhibitory ? -20.0 * 4.5 / 10.0 : 60.0 * 0.27 / 10.0;
        pr->delay_steps = 1;
        uint32_t blocks = (uint32_t)(n / 4000);
        if (cluster && blocks > 1) {
            pr->rule = SM_CONN_BLOCKS;
            pr->blocks = blocks;
            pr->p = 72.0 * blocks / (double)n;
            pr->p_next = 8.0 * blocks / (double)n;
            pr->p_out = 0.0;
        }
    }
    return 0;
}
