/* loader/nir.c: NIR import: reads a NIR graph from HDF5 (nested graphs flattened), maps neuron nodes onto lif and
 * spike_source populations and weight, scale and delay nodes onto list projections, in docs/nir.md's units. */
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "spikemesh/loader.h"

/* ---- the flattened graph ---- */

typedef enum {
    SM__N_INPUT,     /* top-level Input: a spike_source population */
    SM__N_OUTPUT,    /* top-level Output: a sink */
    SM__N_PASS,      /* Input or Output of a nested graph: passes its signal on */
    SM__N_AFFINE,
    SM__N_LINEAR,
    SM__N_SCALE,
    SM__N_DELAY,
    SM__N_LIF,
    SM__N_CUBALIF,
    SM__N_LI,
    SM__N_CUBALI,
    SM__N_IF,
    SM__N_I,
    SM__N_THRESHOLD,
    SM__N_UNSUPPORTED
} sm__kind_t;

/* Neuron parameters, one array per parameter (per neuron, or one value for all). */
enum { SM__P_TAU, SM__P_TAU_SYN, SM__P_R, SM__P_V_LEAK, SM__P_V_TH, SM__P_V_RESET, SM__P_W_IN, SM__NPARAM };

typedef struct {
    char *name;      /* flattened name: nested nodes are "graph.node" */
    char *path;      /* HDF5 path of its group, for messages */
    char type[64];   /* NIR type as written */
    sm__kind_t kind;
    uint32_t nin, nout; /* signal sizes in and out; a neuron node has nin == nout == its size */
    double *w;       /* Affine, Linear: [nout * nin] row-major; Scale: [n] factors; Delay: [n] delays in steps */
    double *b;       /* Affine: [nout] bias */
    double *p[SM__NPARAM];  /* neuron parameters, each [n] */
    int pop;         /* population index, or -1 */
} sm__node_t;

/* An HDF5 group read as a node or a graph: its object's identity in the file, and its path. */
typedef struct {
    unsigned char id[16];
    char *path;
} sm__seen_t;

typedef struct {
    const char *file; /* as given, for messages */
    double dt;        /* ms */
    sm_errbuf_t *eb;
    hid_t f;
    sm__node_t *nodes;
    uint32_t nn, ncap;
    uint32_t *edges;  /* (source, target) node indices */
    uint64_t ne, ecap;
    sm__seen_t *seen; /* every group read so far */
    uint32_t nseen, seencap;
} sm__nir_t;

#define SM__NIR_DEPTH_MAX 32
#define SM__NIR_ELEMS_MAX (1u << 26) /* per dataset, and per dense weight matrix built */
#define SM__NIR_WORK_MAX 1e10        /* multiply-adds to compose chains of weight matrices */

static int sm__is_transform(sm__kind_t k)
{
    return k == SM__N_AFFINE || k == SM__N_LINEAR || k == SM__N_SCALE || k == SM__N_DELAY || k == SM__N_PASS;
}

static int sm__is_population(sm__kind_t k)
{
    return k == SM__N_INPUT || (k >= SM__N_LIF && k <= SM__N_THRESHOLD);
}

static void sm__nodes_free(sm__nir_t *x)
{
    for (uint32_t i = 0; i < x->nn; i++) {
        sm__node_t *nd = &x->nodes[i];
        free(nd->name);
        free(nd->path);
        free(nd->w);
        free(nd->b);
        for (int k = 0; k < SM__NPARAM; k++)
            free(nd->p[k]);
    }
    free(x->nodes);
    free(x->edges);
    for (uint32_t i = 0; i < x->nseen; i++)
        free(x->seen[i].path);
    free(x->seen);
    x->nodes = NULL;
    x->edges = NULL;
    x->seen = NULL;
    x->nn = x->ncap = 0;
    x->ne = x->ecap = 0;
    x->nseen = x->seencap = 0;
}

static char *sm__strdup2(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return s;
}

static const char *sm__base(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* ---- HDF5 reading ---- */

/* The innermost message on HDF5's error stack ("truncated file: eof = ..."), or "" when there is none. */
typedef struct {
    char msg[256];
} sm__h5why_t;

static herr_t sm__h5walk(unsigned n, const H5E_error2_t *e, void *data)
{
    sm__h5why_t *w = data;
    if (n == 0 && e->desc && e->desc[0])
        snprintf(w->msg, sizeof w->msg, "%s", e->desc);
    return 0;
}

static const char *sm__h5why(sm__h5why_t *w)
{
    w->msg[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, sm__h5walk, w);
    H5Eclear2(H5E_DEFAULT);
    return w->msg;
}

/* 1: loc has a link `name` to an object of type `want` (H5I_GROUP or H5I_DATASET); 0: no such link; -1: it names
 * something else, or cannot be opened. */
static int sm__h5has(hid_t loc, const char *name, H5I_type_t want)
{
    htri_t ex = H5Lexists(loc, name, H5P_DEFAULT);
    if (ex <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return ex == 0 ? 0 : -1;
    }
    hid_t o = H5Oopen(loc, name, H5P_DEFAULT);
    if (o < 0) {
        H5Eclear2(H5E_DEFAULT);
        return -1;
    }
    H5I_type_t t = H5Iget_type(o);
    H5Oclose(o);
    return t == want ? 1 : -1;
}

/* Records group g (at path) as read. A group reached a second time, through a second hard or soft link, is refused:
 * nir.write gives every node a group of its own, and shared groups would repeat their nodes, exponentially when
 * graphs share nested graphs (a file of a few kilobytes could flatten to billions of nodes), or nest a graph in
 * itself. */
static int sm__visit(sm__nir_t *x, hid_t g, const char *path)
{
    unsigned char id[16] = {0};
    sm__h5why_t why;
#if H5_VERSION_GE(1, 12, 0)
    H5O_info2_t oi;
    if (H5Oget_info3(g, &oi, H5O_INFO_BASIC) < 0)
        return sm_errorf(x->eb, SM_EPARSE, "%s: %s: cannot read: %s", x->file, path, sm__h5why(&why));
    memcpy(id, &oi.token, sizeof oi.token < sizeof id ? sizeof oi.token : sizeof id);
#else
    H5O_info_t oi;
#if H5_VERSION_GE(1, 10, 3)
    if (H5Oget_info2(g, &oi, H5O_INFO_BASIC) < 0)
#else
    if (H5Oget_info(g, &oi) < 0)
#endif
        return sm_errorf(x->eb, SM_EPARSE, "%s: %s: cannot read: %s", x->file, path, sm__h5why(&why));
    memcpy(id, &oi.addr, sizeof oi.addr < sizeof id ? sizeof oi.addr : sizeof id);
#endif
    for (uint32_t i = 0; i < x->nseen; i++)
        if (memcmp(x->seen[i].id, id, sizeof id) == 0)
            return sm_errorf(x->eb, SM_EPARSE, "%s: %s: is the same HDF5 group as %s (linked twice); every node and "
                             "graph must be a group of its own", x->file, path, x->seen[i].path);
    if (x->nseen == x->seencap) {
        uint32_t nc = x->seencap ? 2 * x->seencap : 32;
        sm__seen_t *ns = realloc(x->seen, nc * sizeof *ns);
        if (!ns)
            return sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory", x->file);
        x->seen = ns;
        x->seencap = nc;
    }
    memcpy(x->seen[x->nseen].id, id, sizeof id);
    if (!(x->seen[x->nseen].path = sm__strdup2(path, "")))
        return sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory", x->file);
    x->nseen++;
    return 0;
}

/* Reads the string dataset loc/name (a scalar, or one element) into out. Returns 0, SM_ENOENT when there is no
 * such dataset, or SM_EPARSE with a message. */
static int sm__read_str(sm__nir_t *x, hid_t loc, const char *lpath, const char *name, char *out, size_t cap)
{
    int has = sm__h5has(loc, name, H5I_DATASET);
    if (has == 0)
        return SM_ENOENT;
    if (has < 0)
        return sm_errorf(x->eb, SM_EPARSE, "%s: %s/%s: must be a dataset holding a string", x->file, lpath, name);
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT), t = -1, sp = -1, mt = -1;
    int rc = 0;
    sm__h5why_t why;
    out[0] = '\0';
    if (d < 0 || (t = H5Dget_type(d)) < 0 || (sp = H5Dget_space(d)) < 0) {
        rc = sm_errorf(x->eb, SM_EPARSE, "%s: %s/%s: cannot read: %s", x->file, lpath, name, sm__h5why(&why));
    } else if (H5Tget_class(t) != H5T_STRING || H5Sget_simple_extent_npoints(sp) != 1) {
        rc = sm_errorf(x->eb, SM_EPARSE, "%s: %s/%s: must be a single string", x->file, lpath, name);
    } else if (H5Tis_variable_str(t) > 0) {
        char *buf = NULL;
        mt = H5Tcopy(H5T_C_S1);
        if (mt < 0 || H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Tset_cset(mt, H5Tget_cset(t)) < 0 ||
            H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, &buf) < 0)
            rc = sm_errorf(x->eb, SM_EPARSE, "%s: %s/%s: cannot read the string: %s", x->file, lpath, name,
                           sm__h5why(&why));
        else
            snprintf(out, cap, "%s", buf ? buf : "");
        if (buf)
            H5free_memory(buf);
    } else {
        size_t sz = H5Tget_size(t);
        char *buf = sz < 65536 ? calloc(sz + 1, 1) : NULL;
        mt = H5Tcopy(H5T_C_S1);
        if (sz >= 65536)
            rc = sm_errorf(x->eb, SM_EPARSE, "%s: %s/%s: a string of %zu bytes; at most 65535 are supported", x->file,
                           lpath, name, sz);
        else if (!buf || mt < 0 || H5Tset_size(mt, sz + 1) < 0 || H5Tset_cset(mt, H5Tget_cset(t)) < 0 ||
                 H5Tset_strpad(mt, H5T_STR_NULLTERM) < 0 ||
                 H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
            rc = sm_errorf(x->eb, SM_EPARSE, "%s: %s/%s: cannot read the string: %s", x->file, lpath, name,
                           sm__h5why(&why));
        else
            snprintf(out, cap, "%s", buf);
        free(buf);
    }
    if (mt >= 0)
        H5Tclose(mt);
    if (sp >= 0)
        H5Sclose(sp);
    if (t >= 0)
        H5Tclose(t);
    if (d >= 0)
        H5Dclose(d);
    return rc;
}

/* Reads the numeric dataset loc/name as doubles: *out gets its elements (row-major), *count their number, rank and
 * dims[0..rank) its shape (dims holds up to 8). Returns 0, SM_ENOENT when it is absent and not required, or an
 * error with a message. */
static int sm__read_num(sm__nir_t *x, hid_t loc, const char *lpath, const char *name, int required, double **out,
                        uint64_t *count, int *rank, hsize_t dims[8])
{
    *out = NULL;
    *count = 0;
    *rank = 0;
    int has = sm__h5has(loc, name, H5I_DATASET);
    if (has == 0 && !required)
        return SM_ENOENT;
    if (has == 0)
        return sm_errorf(x->eb, SM_EPARSE, "%s: %s: missing dataset \"%s\"", x->file, lpath, name);
    if (has < 0)
        return sm_errorf(x->eb, SM_EPARSE, "%s: %s/%s: must be a dataset of numbers", x->file, lpath, name);
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT), t = -1, sp = -1;
    int rc = 0;
    sm__h5why_t why;
    if (d < 0 || (t = H5Dget_type(d)) < 0 || (sp = H5Dget_space(d)) < 0) {
        rc = sm_errorf(x->eb, SM_EPARSE, "%s: %s/%s: cannot read: %s", x->file, lpath, name, sm__h5why(&why));
        goto out;
    }
    H5T_class_t cl = H5Tget_class(t);
    if (cl != H5T_FLOAT && cl != H5T_INTEGER) {
        rc = sm_errorf(x->eb, SM_EPARSE, "%s: %s/%s: must hold numbers", x->file, lpath, name);
        goto out;
    }
    int r = H5Sget_simple_extent_ndims(sp);
    if (r < 0 || r > 8) {
        rc = sm_errorf(x->eb, SM_EPARSE, "%s: %s/%s: arrays of more than 8 dimensions are not supported", x->file,
                       lpath, name);
        goto out;
    }
    H5Sget_simple_extent_dims(sp, dims, NULL);
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    if (np < 0 || (uint64_t)np > SM__NIR_ELEMS_MAX) {
        rc = sm_errorf(x->eb, SM_ERANGE, "%s: %s/%s: %lld values; at most %u are supported", x->file, lpath, name,
                       (long long)np, SM__NIR_ELEMS_MAX);
        goto out;
    }
    *rank = r;
    *count = (uint64_t)np;
    *out = malloc((np ? (size_t)np : 1) * sizeof **out);
    if (!*out) {
        rc = sm_errorf(x->eb, SM_ENOMEM, "%s: %s/%s: out of memory for %lld values", x->file, lpath, name,
                       (long long)np);
        goto out;
    }
    if (np > 0 && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0) {
        rc = sm_errorf(x->eb, SM_EPARSE, "%s: %s/%s: cannot read: %s", x->file, lpath, name, sm__h5why(&why));
        goto out;
    }
    for (uint64_t i = 0; i < *count; i++)
        if (!isfinite((*out)[i])) {
            rc = sm_errorf(x->eb, SM_ERANGE, "%s: %s/%s: value %llu is %g; every value must be finite", x->file,
                           lpath, name, (unsigned long long)i, (*out)[i]);
            goto out;
        }
out:
    if (rc) {
        free(*out);
        *out = NULL;
    }
    if (sp >= 0)
        H5Sclose(sp);
    if (t >= 0)
        H5Tclose(t);
    if (d >= 0)
        H5Dclose(d);
    return rc;
}

/* ---- nodes ---- */

static int sm__push_node(sm__nir_t *x, const char *prefix, const char *name, const char *path, sm__node_t **out)
{
    if (x->nn == x->ncap) {
        uint32_t nc = x->ncap ? 2 * x->ncap : 32;
        sm__node_t *nn = realloc(x->nodes, nc * sizeof *nn);
        if (!nn)
            return sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory", x->file);
        x->nodes = nn;
        x->ncap = nc;
    }
    sm__node_t *nd = &x->nodes[x->nn];
    memset(nd, 0, sizeof *nd);
    nd->pop = -1;
    nd->name = sm__strdup2(prefix, name);
    nd->path = sm__strdup2(path, "");
    x->nn++;
    if (!nd->name || !nd->path)
        return sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory", x->file);
    for (uint32_t i = 0; i + 1 < x->nn; i++)
        if (strcmp(x->nodes[i].name, nd->name) == 0)
            return sm_errorf(x->eb, SM_EPARSE, "%s: %s: node \"%s\" has the same flattened name as %s", x->file, path,
                             nd->name, x->nodes[i].path);
    *out = nd;
    return 0;
}

/* Product of a "shape" dataset (Input, Output): the number of values the node passes. */
static int sm__read_shape(sm__nir_t *x, hid_t g, const char *path, uint32_t *n)
{
    double *v;
    uint64_t cnt;
    int rank;
    hsize_t dims[8];
    int rc = sm__read_num(x, g, path, "shape", 1, &v, &cnt, &rank, dims);
    if (rc)
        return rc;
    double prod = 1;
    for (uint64_t i = 0; i < cnt; i++) {
        if (v[i] < 1 || v[i] != floor(v[i])) {
            rc = sm_errorf(x->eb, SM_EPARSE, "%s: %s/shape: entry %llu is %g; a shape holds whole numbers >= 1",
                           x->file, path, (unsigned long long)i, v[i]);
            break;
        }
        prod *= v[i];
    }
    free(v);
    if (rc == 0 && (cnt == 0 || prod > SM_SYN_MAX_NEURONS))
        rc = sm_errorf(x->eb, SM_ERANGE, "%s: %s/shape: %.0f values; 1 to %u are supported", x->file, path,
                       cnt ? prod : 0.0, SM_SYN_MAX_NEURONS);
    if (rc == 0)
        *n = (uint32_t)prod;
    return rc;
}

/* A per-neuron parameter: n values, or one value for all (broadcast to n; n == 0 takes the count). */
static int sm__read_param(sm__nir_t *x, hid_t g, sm__node_t *nd, const char *name, int required, double dflt,
                          int slot, uint32_t *n)
{
    double *v;
    uint64_t cnt;
    int rank;
    hsize_t dims[8];
    int rc = sm__read_num(x, g, nd->path, name, required, &v, &cnt, &rank, dims);
    if (rc == SM_ENOENT) {
        cnt = 1;
        v = malloc(sizeof *v);
        if (!v)
            return sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory", x->file);
        v[0] = dflt;
    } else if (rc) {
        return rc;
    }
    if (*n == 0) {
        if (cnt == 0 || cnt > SM_SYN_MAX_NEURONS) {
            free(v);
            return sm_errorf(x->eb, SM_ERANGE, "%s: %s/%s: %llu neurons; 1 to %u are supported", x->file, nd->path,
                             name, (unsigned long long)cnt, SM_SYN_MAX_NEURONS);
        }
        *n = (uint32_t)cnt;
    }
    if (cnt != *n && cnt != 1) {
        free(v);
        return sm_errorf(x->eb, SM_EPARSE, "%s: %s/%s: %llu values, but the node has %u neurons (the other parameters "
                         "have %u values)", x->file, nd->path, name, (unsigned long long)cnt, *n, *n);
    }
    if (cnt != *n) {
        double *all = malloc(*n * sizeof *all);
        if (!all) {
            free(v);
            return sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory", x->file);
        }
        for (uint32_t i = 0; i < *n; i++)
            all[i] = v[0];
        free(v);
        v = all;
    }
    nd->p[slot] = v;
    return 0;
}

/* Reads the parameters of a neuron node: `main` is read first and fixes the size. */
static int sm__read_neuron(sm__nir_t *x, hid_t g, sm__node_t *nd)
{
    uint32_t n = 0;
    int rc = 0;
    switch (nd->kind) {
    case SM__N_LIF:
    case SM__N_LI:
        if ((rc = sm__read_param(x, g, nd, "tau", 1, 0, SM__P_TAU, &n)) != 0 ||
            (rc = sm__read_param(x, g, nd, "r", 1, 0, SM__P_R, &n)) != 0 ||
            (rc = sm__read_param(x, g, nd, "v_leak", 1, 0, SM__P_V_LEAK, &n)) != 0)
            return rc;
        if (nd->kind == SM__N_LIF && ((rc = sm__read_param(x, g, nd, "v_threshold", 1, 0, SM__P_V_TH, &n)) != 0 ||
                                      (rc = sm__read_param(x, g, nd, "v_reset", 0, 0.0, SM__P_V_RESET, &n)) != 0))
            return rc;
        break;
    case SM__N_CUBALIF:
    case SM__N_CUBALI:
        if ((rc = sm__read_param(x, g, nd, "tau_mem", 1, 0, SM__P_TAU, &n)) != 0 ||
            (rc = sm__read_param(x, g, nd, "tau_syn", 1, 0, SM__P_TAU_SYN, &n)) != 0 ||
            (rc = sm__read_param(x, g, nd, "r", 1, 0, SM__P_R, &n)) != 0 ||
            (rc = sm__read_param(x, g, nd, "v_leak", 1, 0, SM__P_V_LEAK, &n)) != 0 ||
            (rc = sm__read_param(x, g, nd, "w_in", 0, 1.0, SM__P_W_IN, &n)) != 0)
            return rc;
        if (nd->kind == SM__N_CUBALIF &&
            ((rc = sm__read_param(x, g, nd, "v_threshold", 1, 0, SM__P_V_TH, &n)) != 0 ||
             (rc = sm__read_param(x, g, nd, "v_reset", 0, 0.0, SM__P_V_RESET, &n)) != 0))
            return rc;
        break;
    case SM__N_IF:
    case SM__N_I:
        if ((rc = sm__read_param(x, g, nd, "r", 1, 0, SM__P_R, &n)) != 0)
            return rc;
        if (nd->kind == SM__N_IF && ((rc = sm__read_param(x, g, nd, "v_threshold", 1, 0, SM__P_V_TH, &n)) != 0 ||
                                     (rc = sm__read_param(x, g, nd, "v_reset", 0, 0.0, SM__P_V_RESET, &n)) != 0))
            return rc;
        break;
    case SM__N_THRESHOLD:
        if ((rc = sm__read_param(x, g, nd, "threshold", 1, 0, SM__P_V_TH, &n)) != 0)
            return rc;
        break;
    default:
        break;
    }
    nd->nin = nd->nout = n;
    /* Time constants are positive; the parameters a population shares must be the same for all its neurons. */
    static const char *const file_name[SM__NPARAM] = {"tau", "tau_syn", "r", "v_leak", "v_threshold", "v_reset",
                                                      "w_in"};
    for (int k = 0; k < SM__NPARAM; k++) {
        const double *v = nd->p[k];
        const char *pname = k == SM__P_TAU && (nd->kind == SM__N_CUBALIF || nd->kind == SM__N_CUBALI) ? "tau_mem"
                            : k == SM__P_V_TH && nd->kind == SM__N_THRESHOLD                       ? "threshold"
                                                                                                    : file_name[k];
        if (!v)
            continue;
        for (uint32_t i = 0; i < n; i++) {
            if ((k == SM__P_TAU || k == SM__P_TAU_SYN) && !(v[i] > 0.0))
                return sm_errorf(x->eb, SM_ERANGE, "%s: %s/%s: time constants must be positive, got %g for neuron %u",
                                 x->file, nd->path, pname, v[i], i);
            if ((k == SM__P_TAU || k == SM__P_TAU_SYN || k == SM__P_V_LEAK || k == SM__P_V_TH || k == SM__P_V_RESET) &&
                v[i] != v[0])
                return sm_errorf(x->eb, SM_EINVAL, "%s: %s/%s: the neurons of a node must share this parameter, but "
                                 "neuron 0 has %g and neuron %u has %g", x->file, nd->path, pname, v[0], i, v[i]);
        }
    }
    return 0;
}

static const struct {
    const char *name;
    sm__kind_t kind;
} sm__types[] = {
    {"Input", SM__N_INPUT},   {"Output", SM__N_OUTPUT},     {"Affine", SM__N_AFFINE}, {"Linear", SM__N_LINEAR},
    {"Scale", SM__N_SCALE},   {"Delay", SM__N_DELAY},       {"LIF", SM__N_LIF},       {"CubaLIF", SM__N_CUBALIF},
    {"LI", SM__N_LI},         {"CubaLI", SM__N_CUBALI},     {"IF", SM__N_IF},         {"I", SM__N_I},
    {"Threshold", SM__N_THRESHOLD},
};

#define SM__SUPPORTED "Input, Output, Affine, Linear, Scale, Delay, Threshold, LIF, CubaLIF, LI, CubaLI, IF, I and " \
                      "nested NIRGraph"

/* Reads one (non-graph) node of type `type` from group g. */
static int sm__read_node(sm__nir_t *x, hid_t g, const char *path, const char *prefix, const char *name,
                         const char *type, int depth, uint32_t *index)
{
    sm__node_t *nd = NULL;
    int rc = sm__push_node(x, prefix, name, path, &nd);
    if (rc)
        return rc;
    *index = x->nn - 1;
    snprintf(nd->type, sizeof nd->type, "%s", type);
    nd->kind = SM__N_UNSUPPORTED;
    for (size_t i = 0; i < sizeof sm__types / sizeof sm__types[0]; i++)
        if (strcmp(type, sm__types[i].name) == 0)
            nd->kind = sm__types[i].kind;
    if ((nd->kind == SM__N_INPUT || nd->kind == SM__N_OUTPUT) && depth > 0) {
        nd->kind = SM__N_PASS;
        rc = sm__read_shape(x, g, path, &nd->nin);
        nd->nout = nd->nin;
        return rc;
    }
    uint64_t cnt;
    int rank;
    hsize_t dims[8];
    switch (nd->kind) {
    case SM__N_INPUT:
        rc = sm__read_shape(x, g, path, &nd->nin);
        nd->nout = nd->nin;
        break;
    case SM__N_OUTPUT:
    case SM__N_UNSUPPORTED:
        break;
    case SM__N_AFFINE:
    case SM__N_LINEAR:
        if ((rc = sm__read_num(x, g, path, "weight", 1, &nd->w, &cnt, &rank, dims)) != 0)
            break;
        if (rank != 2 || dims[0] == 0 || dims[1] == 0 || dims[0] > SM_SYN_MAX_NEURONS || dims[1] > SM_SYN_MAX_NEURONS) {
            rc = sm_errorf(x->eb, SM_EPARSE, "%s: %s/weight: must be a matrix (output size x input size) of 1 to %u "
                           "rows and columns; it has %d dimensions", x->file, path, SM_SYN_MAX_NEURONS, rank);
            break;
        }
        nd->nout = (uint32_t)dims[0];
        nd->nin = (uint32_t)dims[1];
        if (nd->kind == SM__N_AFFINE) {
            if ((rc = sm__read_num(x, g, path, "bias", 1, &nd->b, &cnt, &rank, dims)) != 0)
                break;
            if (cnt != nd->nout)
                rc = sm_errorf(x->eb, SM_EPARSE, "%s: %s/bias: %llu values, but the weight matrix is %u x %u and "
                               "needs one bias per output (%u)", x->file, path, (unsigned long long)cnt, nd->nout,
                               nd->nin, nd->nout);
        }
        break;
    case SM__N_SCALE:
    case SM__N_DELAY:
        if ((rc = sm__read_num(x, g, path, nd->kind == SM__N_SCALE ? "scale" : "delay", 1, &nd->w, &cnt, &rank,
                               dims)) != 0)
            break;
        if (cnt == 0 || cnt > SM_SYN_MAX_NEURONS) {
            rc = sm_errorf(x->eb, SM_ERANGE, "%s: %s/%s: %llu values; 1 to %u are supported", x->file, path,
                           nd->kind == SM__N_SCALE ? "scale" : "delay", (unsigned long long)cnt, SM_SYN_MAX_NEURONS);
            break;
        }
        nd->nin = nd->nout = (uint32_t)cnt;
        for (uint32_t i = 0; nd->kind == SM__N_DELAY && i < nd->nin; i++) {
            /* seconds -> steps of dt ms: a whole number of steps */
            double steps = nd->w[i] * 1000.0 / x->dt, r = floor(steps + 0.5);
            if (!(nd->w[i] >= 0.0) || fabs(steps - r) > 1e-6 * (r > 1 ? r : 1) || r > SM_SYN_MAX_DELAY - 1) {
                rc = sm_errorf(x->eb, SM_ERANGE, "%s: %s/delay: value %u is %g s = %.6g steps of %g ms; a delay must be a "
                               "whole number of steps, from 0 to %u", x->file, path, i, nd->w[i], steps, x->dt,
                               SM_SYN_MAX_DELAY - 1);
                break;
            }
            nd->w[i] = r;
        }
        break;
    default:
        rc = sm__read_neuron(x, g, nd);
        break;
    }
    return rc;
}

/* ---- graphs ---- */

typedef struct {
    char *name;   /* local name */
    int graph;    /* 1: a nested graph, whose signal enters at `in` and leaves at `out` */
    uint32_t idx; /* flat index (graph == 0) */
    uint32_t in, out; /* graph == 1: flat index of its one Input / Output node, UINT32_MAX: none, -2: several */
    int used;     /* named by an edge */
} sm__local_t;

#define SM__NONE UINT32_MAX
#define SM__MANY (UINT32_MAX - 1)

static int sm__push_edge(sm__nir_t *x, uint32_t a, uint32_t b)
{
    if (x->ne == x->ecap) {
        uint64_t nc = x->ecap ? 2 * x->ecap : 64;
        uint32_t *ne = realloc(x->edges, 2 * nc * sizeof *ne);
        if (!ne)
            return sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory", x->file);
        x->edges = ne;
        x->ecap = nc;
    }
    x->edges[2 * x->ne] = a;
    x->edges[2 * x->ne + 1] = b;
    x->ne++;
    return 0;
}

/* Reads the edges dataset of a graph: 2 * *ne strings (source, target), allocated. */
static int sm__read_edges(sm__nir_t *x, hid_t g, const char *path, char ***out, uint64_t *ne)
{
    *out = NULL;
    *ne = 0;
    int has = sm__h5has(g, "edges", H5I_DATASET);
    if (has == 0)
        return sm_errorf(x->eb, SM_EPARSE, "%s: %s: missing dataset \"edges\"", x->file, path);
    if (has < 0)
        return sm_errorf(x->eb, SM_EPARSE, "%s: %s/edges: must be a dataset of (source, target) names", x->file, path);
    hid_t d = H5Dopen2(g, "edges", H5P_DEFAULT), t = -1, sp = -1, mt = -1;
    int rc = 0;
    sm__h5why_t why;
    hsize_t dims[8] = {0};
    char **s = NULL;
    size_t n = 0;
    if (d < 0 || (t = H5Dget_type(d)) < 0 || (sp = H5Dget_space(d)) < 0) {
        rc = sm_errorf(x->eb, SM_EPARSE, "%s: %s/edges: cannot read: %s", x->file, path, sm__h5why(&why));
        goto out;
    }
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    if (np == 0) /* no edges (nir.write stores an empty list as an empty array of any type) */
        goto out;
    int r = H5Sget_simple_extent_ndims(sp);
    if (r == 2)
        H5Sget_simple_extent_dims(sp, dims, NULL);
    if (H5Tget_class(t) != H5T_STRING || r != 2 || dims[1] != 2 || np < 0 || np > (1 << 26)) {
        rc = sm_errorf(x->eb, SM_EPARSE, "%s: %s/edges: must be an E x 2 array of strings (source, target)", x->file,
                       path);
        goto out;
    }
    n = (size_t)np;
    s = calloc(n, sizeof *s);
    if (!s) {
        rc = sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory for %zu edges", x->file, n / 2);
        goto out;
    }
    mt = H5Tcopy(H5T_C_S1);
    if (H5Tis_variable_str(t) > 0) {
        char **buf = calloc(n, sizeof *buf);
        if (!buf || mt < 0 || H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Tset_cset(mt, H5Tget_cset(t)) < 0 ||
            H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
            rc = buf ? sm_errorf(x->eb, SM_EPARSE, "%s: %s/edges: cannot read: %s", x->file, path, sm__h5why(&why))
                     : sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory", x->file);
        } else {
            for (size_t i = 0; i < n && rc == 0; i++) {
                s[i] = sm__strdup2(buf[i] ? buf[i] : "", "");
                if (!s[i])
                    rc = sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory", x->file);
            }
        }
        for (size_t i = 0; buf && i < n; i++)
            if (buf[i])
                H5free_memory(buf[i]);
        free(buf);
    } else {
        size_t sz = H5Tget_size(t);
        char *buf = sz < 65536 ? calloc(n, sz + 1) : NULL;
        if (!buf || mt < 0 || H5Tset_size(mt, sz + 1) < 0 || H5Tset_cset(mt, H5Tget_cset(t)) < 0 ||
            H5Tset_strpad(mt, H5T_STR_NULLTERM) < 0 ||
            H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
            rc = buf ? sm_errorf(x->eb, SM_EPARSE, "%s: %s/edges: cannot read: %s", x->file, path, sm__h5why(&why))
                     : sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory", x->file);
        } else {
            for (size_t i = 0; i < n && rc == 0; i++) {
                s[i] = sm__strdup2(buf + i * (sz + 1), "");
                if (!s[i])
                    rc = sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory", x->file);
            }
        }
        free(buf);
    }
out:
    if (rc && s) {
        for (size_t i = 0; i < n; i++)
            free(s[i]);
        free(s);
        s = NULL;
    }
    if (mt >= 0)
        H5Tclose(mt);
    if (sp >= 0)
        H5Sclose(sp);
    if (t >= 0)
        H5Tclose(t);
    if (d >= 0)
        H5Dclose(d);
    if (rc == 0 && s) {
        *out = s;
        *ne = n / 2;
    }
    return rc;
}

static int sm__read_graph(sm__nir_t *x, hid_t g, const char *path, const char *prefix, int depth, uint32_t *gin,
                          uint32_t *gout);

/* Resolves one edge end within a graph: a local node; a nested graph (its Input node as a target, its Output node
 * as a source); or "graph.node", a node of a nested graph by its flattened name. SM__NONE when unknown. */
static int sm__resolve(sm__nir_t *x, const char *path, sm__local_t *loc, uint32_t nloc, const char *prefix,
                       const char *name, int as_target, uint64_t e, const char *a, const char *b, uint32_t *out)
{
    *out = SM__NONE;
    for (uint32_t i = 0; i < nloc; i++) {
        if (strcmp(loc[i].name, name) != 0)
            continue;
        loc[i].used = 1;
        if (!loc[i].graph) {
            *out = loc[i].idx;
            return 0;
        }
        uint32_t v = as_target ? loc[i].in : loc[i].out;
        if (v == SM__NONE || v == SM__MANY)
            return sm_errorf(x->eb, SM_EPARSE, "%s: %s/edges: edge %llu (%s -> %s): graph node \"%s\" has %s %s node; "
                             "name one as \"%s.NODE\"", x->file, path, (unsigned long long)e, a, b, name,
                             v == SM__NONE ? "no" : "more than one", as_target ? "Input" : "Output", name);
        *out = v;
        return 0;
    }
    char *flat = sm__strdup2(prefix, name);
    if (!flat)
        return sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory", x->file);
    for (uint32_t i = 0; i < x->nn; i++)
        if (strcmp(x->nodes[i].name, flat) == 0 && strchr(name, '.')) {
            *out = i;
            break;
        }
    free(flat);
    return 0;
}

/* Reads a graph's nodes (recursing into nested graphs) and its edges. */
static int sm__read_graph(sm__nir_t *x, hid_t g, const char *path, const char *prefix, int depth, uint32_t *gin,
                          uint32_t *gout)
{
    char type[64];
    int rc = sm__read_str(x, g, path, "type", type, sizeof type);
    if (rc == SM_ENOENT)
        return sm_errorf(x->eb, SM_EPARSE, "%s: %s/type: missing; a graph names its type there (\"NIRGraph\")",
                         x->file, path);
    if (rc)
        return rc;
    if (strcmp(type, "NIRGraph") != 0)
        return sm_errorf(x->eb, SM_EPARSE, "%s: %s/type: is \"%s\"; expected \"NIRGraph\"", x->file, path, type);
    if (depth > SM__NIR_DEPTH_MAX)
        return sm_errorf(x->eb, SM_ERANGE, "%s: %s: graphs nested more than %d deep", x->file, path, SM__NIR_DEPTH_MAX);
    int has = sm__h5has(g, "nodes", H5I_GROUP);
    if (has <= 0)
        return sm_errorf(x->eb, SM_EPARSE, "%s: %s: %s", x->file, path,
                         has == 0 ? "missing group \"nodes\"" : "\"nodes\" must be a group of nodes");
    hid_t ng = H5Gopen2(g, "nodes", H5P_DEFAULT);
    H5G_info_t info;
    sm__h5why_t why;
    if (ng < 0 || H5Gget_info(ng, &info) < 0) {
        if (ng >= 0)
            H5Gclose(ng);
        return sm_errorf(x->eb, SM_EPARSE, "%s: %s/nodes: cannot read: %s", x->file, path, sm__h5why(&why));
    }
    sm__local_t *loc = calloc(info.nlinks ? info.nlinks : 1, sizeof *loc);
    uint32_t nloc = 0, nin = 0, nout = 0, lin = SM__NONE, lout = SM__NONE;
    char **es = NULL;
    uint64_t ne = 0;
    if (!loc)
        rc = sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory", x->file);
    for (hsize_t i = 0; i < info.nlinks && rc == 0; i++) {
        char name[256], npath[1024], sub[1024];
        ssize_t len = H5Lget_name_by_idx(ng, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT);
        if (len < 0 || (size_t)len >= sizeof name) {
            rc = sm_errorf(x->eb, SM_EPARSE, "%s: %s/nodes: node %llu: %s", x->file, path, (unsigned long long)i,
                           len < 0 ? "cannot read its name" : "name longer than 255 bytes");
            break;
        }
        snprintf(npath, sizeof npath, "%s/nodes/%s", path, name);
        if (sm__h5has(ng, name, H5I_GROUP) != 1) {
            rc = sm_errorf(x->eb, SM_EPARSE, "%s: %s: a node must be a group", x->file, npath);
            break;
        }
        hid_t cg = H5Gopen2(ng, name, H5P_DEFAULT);
        if (cg < 0) {
            rc = sm_errorf(x->eb, SM_EPARSE, "%s: %s: cannot open: %s", x->file, npath, sm__h5why(&why));
            break;
        }
        if ((rc = sm__visit(x, cg, npath)) != 0) {
            H5Gclose(cg);
            break;
        }
        loc[nloc].name = sm__strdup2(name, "");
        if (!loc[nloc].name) {
            H5Gclose(cg);
            rc = sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory", x->file);
            break;
        }
        nloc++;
        sm__local_t *l = &loc[nloc - 1];
        rc = sm__read_str(x, cg, npath, "type", type, sizeof type);
        if (rc == SM_ENOENT)
            rc = sm_errorf(x->eb, SM_EPARSE, "%s: %s: missing dataset \"type\"", x->file, npath);
        if (rc == 0 && strcmp(type, "NIRGraph") == 0) {
            snprintf(sub, sizeof sub, "%s%s.", prefix, name);
            l->graph = 1;
            rc = sm__read_graph(x, cg, npath, sub, depth + 1, &l->in, &l->out);
        } else if (rc == 0) {
            rc = sm__read_node(x, cg, npath, prefix, name, type, depth, &l->idx);
            if (rc == 0 && strcmp(type, "Input") == 0) {
                nin++;
                lin = l->idx;
            } else if (rc == 0 && strcmp(type, "Output") == 0) {
                nout++;
                lout = l->idx;
            }
        }
        H5Gclose(cg);
    }
    H5Gclose(ng);
    *gin = nin == 1 ? lin : nin ? SM__MANY : SM__NONE;
    *gout = nout == 1 ? lout : nout ? SM__MANY : SM__NONE;

    if (rc == 0)
        rc = sm__read_edges(x, g, path, &es, &ne);
    /* Edge ends that name no node. snnTorch writes recurrent layers as a nested graph whose edges call the neuron
     * node by another name than its key ("lif" for node "lif1"): inside a nested graph, one unknown name with one
     * node that no edge names is taken to be that node (docs/nir.md). */
    uint32_t *ends = rc == 0 ? malloc((ne ? 2 * ne : 1) * sizeof *ends) : NULL;
    if (rc == 0 && !ends)
        rc = sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory", x->file);
    const char *unknown = NULL;
    uint64_t first_bad = 0;
    int several_unknown = 0;
    for (uint64_t e = 0; e < ne && rc == 0; e++)
        for (int k = 0; k < 2 && rc == 0; k++) {
            rc = sm__resolve(x, path, loc, nloc, prefix, es[2 * e + k], k, e, es[2 * e], es[2 * e + 1],
                             &ends[2 * e + k]);
            if (rc == 0 && ends[2 * e + k] == SM__NONE) {
                if (!unknown) {
                    unknown = es[2 * e + k];
                    first_bad = e;
                } else if (strcmp(unknown, es[2 * e + k]) != 0) {
                    several_unknown = 1;
                }
            }
        }
    if (rc == 0 && unknown) {
        uint32_t orphan = SM__NONE, norphans = 0;
        for (uint32_t i = 0; i < nloc; i++)
            if (!loc[i].used) {
                norphans++;
                orphan = i;
            }
        if (depth > 0 && !several_unknown && norphans == 1 && !loc[orphan].graph) {
            for (uint64_t e = 0; e < 2 * ne; e++)
                if (ends[e] == SM__NONE)
                    ends[e] = loc[orphan].idx;
        } else {
            rc = sm_errorf(x->eb, SM_EPARSE, "%s: %s/edges: edge %llu (%s -> %s): no node named \"%s\" in %s/nodes",
                           x->file, path, (unsigned long long)first_bad, es[2 * first_bad], es[2 * first_bad + 1],
                           unknown, path);
        }
    }
    for (uint64_t e = 0; e < ne && rc == 0; e++)
        rc = sm__push_edge(x, ends[2 * e], ends[2 * e + 1]);
    free(ends);
    for (uint64_t e = 0; es && e < 2 * ne; e++)
        free(es[e]);
    free(es);
    for (uint32_t i = 0; i < nloc; i++)
        free(loc[i].name);
    free(loc);
    return rc;
}

/* ---- signals: what reaches each population from each source population ---- */

/* The linear map from a source population (cols neurons) to the signal at some node (rows values), for one
 * delay: diagonal (rows == cols) or dense (rows x cols, row-major). */
typedef struct {
    uint32_t delay;
    uint32_t rows, cols;
    int diag;
    double *m;
} sm__term_t;

typedef struct {
    sm__term_t *t;
    uint32_t n, cap;
} sm__terms_t;

static void sm__terms_clear(sm__terms_t *l)
{
    for (uint32_t i = 0; i < l->n; i++)
        free(l->t[i].m);
    free(l->t);
    memset(l, 0, sizeof *l);
}

static int sm__densify(sm__term_t *t)
{
    if (!t->diag)
        return 0;
    double *m = calloc((size_t)t->rows * t->cols, sizeof *m);
    if (!m)
        return SM_ENOMEM;
    for (uint32_t i = 0; i < t->rows; i++)
        m[(size_t)i * t->cols + i] = t->m[i];
    free(t->m);
    t->m = m;
    t->diag = 0;
    return 0;
}

/* Adds t (taken over) into l: summed into the term of the same delay, if any. */
static int sm__terms_add(sm__terms_t *l, sm__term_t *t)
{
    for (uint32_t i = 0; i < l->n; i++) {
        sm__term_t *u = &l->t[i];
        if (u->delay != t->delay)
            continue;
        if (u->diag != t->diag && (sm__densify(u) || sm__densify(t))) {
            free(t->m);
            return SM_ENOMEM;
        }
        size_t cnt = u->diag ? u->rows : (size_t)u->rows * u->cols;
        for (size_t k = 0; k < cnt; k++)
            u->m[k] += t->m[k];
        free(t->m);
        t->m = NULL;
        return 0;
    }
    if (l->n == l->cap) {
        uint32_t nc = l->cap ? 2 * l->cap : 4;
        sm__term_t *nt = realloc(l->t, nc * sizeof *nt);
        if (!nt) {
            free(t->m);
            return SM_ENOMEM;
        }
        l->t = nt;
        l->cap = nc;
    }
    l->t[l->n++] = *t;
    t->m = NULL;
    return 0;
}

static int sm__term_copy(const sm__term_t *t, sm__term_t *c)
{
    size_t cnt = t->diag ? t->rows : (size_t)t->rows * t->cols;
    *c = *t;
    c->m = malloc((cnt ? cnt : 1) * sizeof *c->m);
    if (!c->m)
        return SM_ENOMEM;
    memcpy(c->m, t->m, cnt * sizeof *c->m);
    return 0;
}

/* The signal after transform node nd: out gets nd applied to every term of in. *work counts the multiply-adds of
 * matrix products. Returns 0, SM_ENOMEM, SM_ERANGE (a matrix too large) or SM_EINVAL (too much work). */
static int sm__apply(const sm__node_t *nd, const sm__terms_t *in, sm__terms_t *out, double *work)
{
    for (uint32_t k = 0; k < in->n; k++) {
        const sm__term_t *t = &in->t[k];
        sm__term_t r;
        switch (nd->kind) {
        case SM__N_AFFINE:
        case SM__N_LINEAR: {
            if ((uint64_t)nd->nout * t->cols > SM__NIR_ELEMS_MAX)
                return SM_ERANGE;
            if (!t->diag && (*work += (double)nd->nout * nd->nin * t->cols) > SM__NIR_WORK_MAX)
                return SM_EINVAL;
            r = (sm__term_t){.delay = t->delay, .rows = nd->nout, .cols = t->cols, .diag = 0};
            r.m = calloc((size_t)r.rows * r.cols, sizeof *r.m);
            if (!r.m)
                return SM_ENOMEM;
            for (uint32_t i = 0; i < nd->nout; i++) {
                const double *wr = nd->w + (size_t)i * nd->nin;
                double *o = r.m + (size_t)i * r.cols;
                if (t->diag) {
                    for (uint32_t j = 0; j < nd->nin; j++)
                        o[j] = wr[j] * t->m[j];
                } else {
                    for (uint32_t j = 0; j < nd->nin; j++) {
                        const double *mr = t->m + (size_t)j * t->cols;
                        if (wr[j] != 0.0)
                            for (uint32_t c = 0; c < t->cols; c++)
                                o[c] += wr[j] * mr[c];
                    }
                }
            }
            break;
        }
        case SM__N_SCALE:
            if (sm__term_copy(t, &r))
                return SM_ENOMEM;
            for (uint32_t i = 0; i < t->rows; i++) {
                if (r.diag)
                    r.m[i] *= nd->w[i];
                else
                    for (uint32_t c = 0; c < t->cols; c++)
                        r.m[(size_t)i * t->cols + c] *= nd->w[i];
            }
            break;
        case SM__N_DELAY: {
            /* One term per distinct delay: the rows that have it. */
            for (uint32_t i = 0; i < nd->nin; i++) {
                int seen = 0;
                for (uint32_t j = 0; j < i && !seen; j++)
                    seen = nd->w[j] == nd->w[i];
                if (seen)
                    continue;
                if (sm__term_copy(t, &r))
                    return SM_ENOMEM;
                r.delay = t->delay + (uint32_t)nd->w[i];
                for (uint32_t j = 0; j < t->rows; j++) {
                    if (nd->w[j] == nd->w[i])
                        continue;
                    if (r.diag)
                        r.m[j] = 0.0;
                    else
                        memset(r.m + (size_t)j * t->cols, 0, t->cols * sizeof *r.m);
                }
                if (sm__terms_add(out, &r))
                    return SM_ENOMEM;
            }
            continue;
        }
        default: /* a nested graph's Input or Output */
            if (sm__term_copy(t, &r))
                return SM_ENOMEM;
            break;
        }
        if (sm__terms_add(out, &r))
            return SM_ENOMEM;
    }
    return 0;
}

/* How a unit of input signal moves neuron j of population node q: a spike of weight w becomes a synaptic weight of
 * w * sm__in_scale (mV), a constant input b a drive of b * sm__drive_scale (mV). */
static double sm__in_scale(const sm__node_t *q, uint32_t j)
{
    switch (q->kind) {
    case SM__N_LIF:
    case SM__N_LI: /* tau dv/dt = ... + R w delta(t): v jumps by R w / tau (tau in s) */
        return q->p[SM__P_R][j] / q->p[SM__P_TAU][j];
    case SM__N_IF:
    case SM__N_I: /* dv/dt = R w delta(t): v jumps by R w */
        return q->p[SM__P_R][j];
    case SM__N_CUBALIF:
    case SM__N_CUBALI: /* tau_syn dI/dt = ... + w_in w delta(t): R I jumps by R w_in w / tau_syn */
        return q->p[SM__P_R][j] * q->p[SM__P_W_IN][j] / q->p[SM__P_TAU_SYN][j];
    default:
        return 1.0;
    }
}

static double sm__drive_scale(const sm__node_t *q, uint32_t j)
{
    switch (q->kind) {
    case SM__N_LIF:
    case SM__N_LI:
    case SM__N_IF:
    case SM__N_I:
        return q->p[SM__P_R][j];
    case SM__N_CUBALIF:
    case SM__N_CUBALI:
        return q->p[SM__P_R][j] * q->p[SM__P_W_IN][j];
    default:
        return 1.0;
    }
}

/* Appends a list projection pre -> post (population indices) from one term (post rows x pre cols). */
static int sm__add_proj(sm__nir_t *x, sm_net_t *net, uint32_t *cap, const sm__node_t *src, const sm__node_t *dst,
                        const sm__term_t *t)
{
    uint32_t delay = t->delay + 1;
    if (delay > SM_SYN_MAX_DELAY)
        return sm_errorf(x->eb, SM_ERANGE, "%s: the delays from \"%s\" to \"%s\" add up to %u steps of %g ms; a "
                         "synapse holds at most %u", x->file, src->name, dst->name, delay - 1, x->dt,
                         SM_SYN_MAX_DELAY - 1);
    uint64_t nz = 0;
    for (uint32_t j = 0; j < t->rows; j++)
        for (uint32_t i = 0; i < t->cols; i++) {
            double v = t->diag ? (i == j ? t->m[j] : 0.0) : t->m[(size_t)j * t->cols + i];
            nz += v * sm__in_scale(dst, j) != 0.0;
        }
    if (nz == 0)
        return 0;
    if (net->nprojs == *cap) {
        uint32_t nc = *cap ? 2 * *cap : 8;
        sm_proj_t *np = realloc(net->projs, nc * sizeof *np);
        if (!np)
            return sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory", x->file);
        net->projs = np;
        *cap = nc;
    }
    sm_proj_t *pr = &net->projs[net->nprojs++];
    memset(pr, 0, sizeof *pr);
    pr->pre = (uint32_t)src->pop;
    pr->post = (uint32_t)dst->pop;
    pr->autapses = 1;
    pr->rule = SM_CONN_LIST;
    pr->delay_steps = delay;
    pr->pairs = malloc(2 * nz * sizeof *pr->pairs);
    pr->weights = malloc(nz * sizeof *pr->weights);
    if (!pr->pairs || !pr->weights)
        return sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory for %llu synapses", x->file, (unsigned long long)nz);
    for (uint32_t i = 0; i < t->cols; i++)
        for (uint32_t j = 0; j < t->rows; j++) {
            double v = t->diag ? (i == j ? t->m[j] : 0.0) : t->m[(size_t)j * t->cols + i];
            double w = v * sm__in_scale(dst, j);
            if (w == 0.0)
                continue;
            if (fabs(w) > 3.0e38)
                return sm_errorf(x->eb, SM_ERANGE, "%s: a synapse from \"%s\" %u to \"%s\" %u weighs %g mV, more than "
                                 "a 32-bit float holds", x->file, src->name, i, dst->name, j, w);
            pr->pairs[2 * pr->npairs] = i;
            pr->pairs[2 * pr->npairs + 1] = j;
            pr->weights[pr->npairs++] = (float)w;
        }
    return 0;
}

/* ---- the network ---- */

static const sm_lif_params_t sm__source_lif = {
    .tau_m = 20.0, .tau_e = 5.0, .tau_i = 10.0, .v_thresh = -50.0,
    .v_reset = -60.0, .v_rest = -49.0, .t_ref = 5.0, .i_bias = 0.0,
};

/* The population of a neuron node (or Input node), without its drive. */
static void sm__make_pop(const sm__node_t *nd, sm_pop_t *pop)
{
    sm_lif_params_t *l = &pop->lif;
    double tau = nd->p[SM__P_TAU] ? nd->p[SM__P_TAU][0] * 1000.0 : 1000.0; /* s -> ms */
    double ts = nd->p[SM__P_TAU_SYN] ? nd->p[SM__P_TAU_SYN][0] * 1000.0 : tau;
    double vl = nd->p[SM__P_V_LEAK] ? nd->p[SM__P_V_LEAK][0] : 0.0;
    memset(pop, 0, sizeof *pop);
    pop->size = nd->nout;
    if (nd->kind == SM__N_INPUT) {
        pop->model = SM_MODEL_SPIKE_SOURCE;
        *l = sm__source_lif;
        pop->v_init_lo = pop->v_init_hi = l->v_reset;
        return;
    }
    pop->model = SM_MODEL_LIF;
    /* IF and I have no time constant: tau_m = 1 s makes tau_m dv/dt = R I the same as NIR's dv/dt = R I. */
    l->tau_m = tau;
    l->tau_e = l->tau_i = ts;
    l->v_rest = vl;
    l->v_thresh = nd->p[SM__P_V_TH] ? nd->p[SM__P_V_TH][0] : 0.0;
    l->v_reset = nd->p[SM__P_V_RESET] ? nd->p[SM__P_V_RESET][0] : 0.0;
    l->delta = nd->kind != SM__N_CUBALIF && nd->kind != SM__N_CUBALI;
    l->no_leak = nd->kind == SM__N_IF || nd->kind == SM__N_I;
    l->no_spike = nd->kind == SM__N_LI || nd->kind == SM__N_CUBALI || nd->kind == SM__N_I;
    l->stateless = nd->kind == SM__N_THRESHOLD;
    if (l->stateless)
        l->tau_m = l->tau_e = l->tau_i = 1.0; /* unused */
    /* v starts at rest: v_leak with a leak, 0 without. */
    pop->v_init_lo = pop->v_init_hi = l->no_leak || l->stateless ? 0.0 : vl;
}

/* Population names: the flattened node name, with characters the network format does not allow as '_'. */
static int sm__pop_name(sm__nir_t *x, const sm__node_t *nd, char out[SM_NAME_MAX])
{
    size_t n = strlen(nd->name);
    if (n == 0 || n >= SM_NAME_MAX)
        return sm_errorf(x->eb, SM_EPARSE, "%s: %s: node name \"%.80s\" is longer than the %d characters of a "
                         "population name", x->file, nd->path, nd->name, SM_NAME_MAX - 1);
    for (size_t i = 0; i <= n; i++) {
        char c = nd->name[i];
        out[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                         c == '-' || c == '.' || c == '\0'
                     ? c
                     : '_';
    }
    return 0;
}

typedef struct {
    uint32_t node;
    uint32_t dist;
    const char *name;
} sm__order_t;

static int sm__order_cmp(const void *pa, const void *pb)
{
    const sm__order_t *a = pa, *b = pb;
    if (a->dist != b->dist)
        return a->dist < b->dist ? -1 : 1;
    return strcmp(a->name, b->name);
}

static int sm__proj_cmp(const void *pa, const void *pb)
{
    const sm_proj_t *a = pa, *b = pb;
    if (a->pre != b->pre)
        return a->pre < b->pre ? -1 : 1;
    if (a->post != b->post)
        return a->post < b->post ? -1 : 1;
    return (a->delay_steps > b->delay_steps) - (a->delay_steps < b->delay_steps);
}

/* Builds the network from the flattened graph. */
static int sm__build(sm__nir_t *x, sm_net_t *net)
{
    int rc = 0;
    uint32_t nn = x->nn, npop = 0, pcap = 0;
    sm__order_t *ord = NULL;
    uint32_t *topo = NULL, *indeg = NULL, *eoff = NULL, *eout = NULL;
    double **cin = NULL, **cout = NULL;
    sm__terms_t *sig = NULL;

    /* Unsupported nodes: all of them in one message. */
    {
        char more[512] = "";
        size_t len = 0;
        uint32_t first = UINT32_MAX, count = 0;
        for (uint32_t i = 0; i < nn; i++) {
            if (x->nodes[i].kind != SM__N_UNSUPPORTED)
                continue;
            if (first == UINT32_MAX)
                first = i;
            else if (len < sizeof more - 64)
                len += (size_t)snprintf(more + len, sizeof more - len, "%s\"%s\" %s", count > 1 ? ", " : "",
                                        x->nodes[i].name, x->nodes[i].type);
            count++;
        }
        if (first != UINT32_MAX)
            return sm_errorf(x->eb, SM_EINVAL, "%s: %s: node \"%s\" has type %s, which spikemesh does not import%s%s%s; "
                             "supported: " SM__SUPPORTED, x->file, x->nodes[first].path, x->nodes[first].name,
                             x->nodes[first].type, count > 1 ? " (nor " : "", more, count > 1 ? ")" : "");
    }

    /* Sizes along every edge. */
    for (uint64_t e = 0; e < x->ne; e++) {
        const sm__node_t *a = &x->nodes[x->edges[2 * e]], *b = &x->nodes[x->edges[2 * e + 1]];
        if (b->kind == SM__N_INPUT)
            return sm_errorf(x->eb, SM_EPARSE, "%s: edge %s -> %s: an Input node takes no input", x->file, a->name,
                             b->name);
        if (a->kind == SM__N_OUTPUT)
            return sm_errorf(x->eb, SM_EPARSE, "%s: edge %s -> %s: an Output node has no output", x->file, a->name,
                             b->name);
        if (b->kind != SM__N_OUTPUT && a->nout != b->nin) {
            char wa[64] = "", wb[64] = "";
            if (a->kind == SM__N_AFFINE || a->kind == SM__N_LINEAR)
                snprintf(wa, sizeof wa, ", weight %u x %u", a->nout, a->nin);
            if (b->kind == SM__N_AFFINE || b->kind == SM__N_LINEAR)
                snprintf(wb, sizeof wb, ", weight %u x %u", b->nout, b->nin);
            return sm_errorf(x->eb, SM_EPARSE, "%s: edge %s -> %s: \"%s\" (%s%s) puts out %u values, but \"%s\" (%s%s) "
                             "takes %u%s", x->file, a->name, b->name, a->name, a->type, wa, a->nout, b->name, b->type,
                             wb, b->nin, sm__is_population(b->kind) ? ", one per neuron" : "");
        }
    }

    /* Adjacency (out-edges by source node). */
    eoff = calloc((size_t)nn + 1, sizeof *eoff);
    eout = malloc((x->ne ? x->ne : 1) * sizeof *eout);
    indeg = calloc(nn ? nn : 1, sizeof *indeg);
    topo = malloc((nn ? nn : 1) * sizeof *topo);
    ord = malloc((nn ? nn : 1) * sizeof *ord);
    if (!eoff || !eout || !indeg || !topo || !ord) {
        rc = sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory", x->file);
        goto out;
    }
    for (uint64_t e = 0; e < x->ne; e++)
        eoff[x->edges[2 * e] + 1]++;
    for (uint32_t i = 0; i < nn; i++)
        eoff[i + 1] += eoff[i];
    {
        uint32_t *fill = malloc((nn ? nn : 1) * sizeof *fill);
        if (!fill) {
            rc = sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory", x->file);
            goto out;
        }
        memcpy(fill, eoff, (size_t)nn * sizeof *fill);
        for (uint64_t e = 0; e < x->ne; e++)
            eout[fill[x->edges[2 * e]]++] = x->edges[2 * e + 1];
        free(fill);
    }

    /* Transform nodes in topological order; a cycle of them has no neuron to break it. */
    uint32_t nt = 0, ntr = 0;
    for (uint64_t e = 0; e < x->ne; e++)
        if (sm__is_transform(x->nodes[x->edges[2 * e]].kind) && sm__is_transform(x->nodes[x->edges[2 * e + 1]].kind))
            indeg[x->edges[2 * e + 1]]++;
    for (uint32_t i = 0; i < nn; i++)
        if (sm__is_transform(x->nodes[i].kind)) {
            ntr++;
            if (indeg[i] == 0)
                topo[nt++] = i;
        }
    for (uint32_t k = 0; k < nt; k++)
        for (uint32_t e = eoff[topo[k]]; e < eoff[topo[k] + 1]; e++)
            if (sm__is_transform(x->nodes[eout[e]].kind) && --indeg[eout[e]] == 0)
                topo[nt++] = eout[e];
    if (nt < ntr) {
        for (uint32_t i = 0; i < nn; i++)
            if (sm__is_transform(x->nodes[i].kind) && indeg[i] > 0) {
                rc = sm_errorf(x->eb, SM_EPARSE, "%s: %s: node \"%s\" (%s) is on a cycle of weight nodes with no neuron "
                               "on it", x->file, x->nodes[i].path, x->nodes[i].name, x->nodes[i].type);
                goto out;
            }
    }

    /* Populations: Input nodes first, then neuron nodes by their distance (in populations) from the inputs, ties
     * and unreachable nodes by name. Distances come from a search over population -> population links. */
    for (uint32_t i = 0; i < nn; i++)
        if (sm__is_population(x->nodes[i].kind)) {
            ord[npop].node = i;
            ord[npop].dist = x->nodes[i].kind == SM__N_INPUT ? 0 : UINT32_MAX;
            ord[npop].name = x->nodes[i].name;
            x->nodes[i].pop = (int)npop++;
        }
    if (npop == 0) {
        rc = sm_errorf(x->eb, SM_EPARSE, "%s: /node: the graph has no Input or neuron node to simulate", x->file);
        goto out;
    }
    sig = calloc(nn, sizeof *sig);
    if (!sig) {
        rc = sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory", x->file);
        goto out;
    }
    /* reach[q] for the current source: which populations a population's signal reaches (through transforms) */
    {
        uint8_t *reach = calloc((size_t)npop * npop, 1), *mark = calloc(nn, 1);
        uint32_t *stack = malloc((size_t)nn * sizeof *stack);
        if (!reach || !mark || !stack) {
            free(reach);
            free(mark);
            free(stack);
            rc = sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory", x->file);
            goto out;
        }
        for (uint32_t p = 0; p < npop; p++) {
            uint32_t sp = 0;
            memset(mark, 0, nn);
            stack[sp++] = ord[p].node;
            mark[ord[p].node] = 1;
            while (sp > 0) {
                uint32_t u = stack[--sp];
                for (uint32_t e = eoff[u]; e < eoff[u + 1]; e++) {
                    uint32_t v = eout[e];
                    if (sm__is_population(x->nodes[v].kind))
                        reach[(size_t)p * npop + (uint32_t)x->nodes[v].pop] = 1;
                    else if (sm__is_transform(x->nodes[v].kind) && !mark[v]) {
                        mark[v] = 1;
                        stack[sp++] = v;
                    }
                }
            }
        }
        /* breadth-first from the inputs */
        uint32_t *queue = stack, qh = 0, qt = 0;
        for (uint32_t p = 0; p < npop; p++)
            if (ord[p].dist == 0)
                queue[qt++] = p;
        while (qh < qt) {
            uint32_t p = queue[qh++];
            for (uint32_t q = 0; q < npop; q++)
                if (reach[(size_t)p * npop + q] && ord[q].dist == UINT32_MAX) {
                    ord[q].dist = ord[p].dist + 1;
                    queue[qt++] = q;
                }
        }
        free(reach);
        free(mark);
        free(stack);
    }
    {
        /* ord is indexed by the provisional population index; sort a copy to get the final order */
        sm__order_t *sorted = malloc(npop * sizeof *sorted);
        if (!sorted) {
            rc = sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory", x->file);
            goto out;
        }
        memcpy(sorted, ord, npop * sizeof *sorted);
        qsort(sorted, npop, sizeof *sorted, sm__order_cmp);
        net->pops = calloc(npop, sizeof *net->pops);
        if (!net->pops) {
            free(sorted);
            rc = sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory", x->file);
            goto out;
        }
        uint64_t total = 0;
        for (uint32_t p = 0; p < npop && rc == 0; p++) {
            sm__node_t *nd = &x->nodes[sorted[p].node];
            nd->pop = (int)p;
            sm__make_pop(nd, &net->pops[p]);
            net->pops[p].first = (uint32_t)total;
            total += nd->nout;
            net->npops++;
            rc = sm__pop_name(x, nd, net->pops[p].name);
            for (uint32_t q = 0; q < p && rc == 0; q++)
                if (strcmp(net->pops[q].name, net->pops[p].name) == 0)
                    rc = sm_errorf(x->eb, SM_EPARSE, "%s: %s: node \"%s\" gives the same population name as \"%s\"",
                                   x->file, nd->path, nd->name, x->nodes[sorted[q].node].name);
            if (rc == 0 && total > SM_SYN_MAX_NEURONS)
                rc = sm_errorf(x->eb, SM_ERANGE, "%s: the network grows to %llu neurons, more than the %u supported",
                               x->file, (unsigned long long)total, SM_SYN_MAX_NEURONS);
        }
        net->n = (uint32_t)total;
        free(sorted);
        if (rc)
            goto out;
    }

    /* Synapses: for each source population, its signal through the transform nodes in topological order. */
    double work = 0;
    for (uint32_t s = 0; s < nn && rc == 0; s++) {
        const sm__node_t *src = &x->nodes[s];
        if (!sm__is_population(src->kind))
            continue;
        sm__terms_t *tgt = calloc(nn, sizeof *tgt); /* what reaches each population node */
        if (!tgt) {
            rc = sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory", x->file);
            break;
        }
        /* from the source along its edges */
        for (uint32_t e = eoff[s]; e < eoff[s + 1] && rc == 0; e++) {
            uint32_t v = eout[e];
            sm__term_t t = {.delay = 0, .rows = src->nout, .cols = src->nout, .diag = 1};
            if (x->nodes[v].kind == SM__N_OUTPUT)
                continue;
            t.m = malloc(src->nout * sizeof *t.m);
            if (!t.m) {
                rc = SM_ENOMEM;
                break;
            }
            for (uint32_t i = 0; i < src->nout; i++)
                t.m[i] = 1.0;
            rc = sm__terms_add(sm__is_population(x->nodes[v].kind) ? &tgt[v] : &sig[v], &t);
        }
        for (uint32_t k = 0; k < nt && rc == 0; k++) {
            uint32_t u = topo[k];
            if (sig[u].n == 0)
                continue;
            sm__terms_t o = {0};
            rc = sm__apply(&x->nodes[u], &sig[u], &o, &work);
            for (uint32_t e = eoff[u]; e < eoff[u + 1] && rc == 0; e++) {
                uint32_t v = eout[e];
                if (x->nodes[v].kind == SM__N_OUTPUT)
                    continue;
                for (uint32_t j = 0; j < o.n && rc == 0; j++) {
                    sm__term_t c;
                    rc = sm__term_copy(&o.t[j], &c) ? SM_ENOMEM : 0;
                    if (rc == 0)
                        rc = sm__terms_add(sm__is_population(x->nodes[v].kind) ? &tgt[v] : &sig[v], &c);
                }
            }
            sm__terms_clear(&o);
            sm__terms_clear(&sig[u]);
        }
        if (rc == SM_ENOMEM || rc == SM_ERANGE)
            rc = sm_errorf(x->eb, rc, "%s: the synapses from \"%s\" take too much memory (dense weight matrices of at "
                           "most %u entries are supported)", x->file, src->name, SM__NIR_ELEMS_MAX);
        else if (rc == SM_EINVAL)
            rc = sm_errorf(x->eb, SM_ERANGE, "%s: the chains of weight matrices after \"%s\" take more than %.0e "
                           "multiplications to compose", x->file, src->name, SM__NIR_WORK_MAX);
        for (uint32_t v = 0; v < nn && rc == 0; v++)
            for (uint32_t j = 0; j < tgt[v].n && rc == 0; j++)
                rc = sm__add_proj(x, net, &pcap, src, &x->nodes[v], &tgt[v].t[j]);
        for (uint32_t v = 0; v < nn; v++) {
            sm__terms_clear(&tgt[v]);
            sm__terms_clear(&sig[v]);
        }
        free(tgt);
    }
    if (rc)
        goto out;
    if (net->nprojs > 1)
        qsort(net->projs, net->nprojs, sizeof *net->projs, sm__proj_cmp);

    /* Constant inputs (Affine biases) through the transform nodes; they ignore delays. */
    cin = calloc(nn, sizeof *cin);
    cout = calloc(nn, sizeof *cout);
    if (!cin || !cout) {
        rc = sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory", x->file);
        goto out;
    }
    for (uint32_t k = 0; k < nt && rc == 0; k++) {
        uint32_t u = topo[k];
        const sm__node_t *nd = &x->nodes[u];
        if (!cin[u] && nd->kind != SM__N_AFFINE)
            continue;
        cout[u] = calloc(nd->nout, sizeof **cout);
        if (!cout[u]) {
            rc = sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory", x->file);
            break;
        }
        for (uint32_t i = 0; i < nd->nout; i++) {
            double v = nd->kind == SM__N_AFFINE ? nd->b[i] : 0.0;
            if (cin[u] && (nd->kind == SM__N_AFFINE || nd->kind == SM__N_LINEAR))
                for (uint32_t j = 0; j < nd->nin; j++)
                    v += nd->w[(size_t)i * nd->nin + j] * cin[u][j];
            else if (cin[u])
                v += nd->kind == SM__N_SCALE ? nd->w[i] * cin[u][i] : cin[u][i];
            cout[u][i] = v;
        }
        for (uint32_t e = eoff[u]; e < eoff[u + 1] && rc == 0; e++) {
            uint32_t v = eout[e];
            if (x->nodes[v].kind == SM__N_OUTPUT)
                continue;
            if (!cin[v] && !(cin[v] = calloc(x->nodes[v].nin, sizeof **cin))) {
                rc = sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory", x->file);
                break;
            }
            for (uint32_t i = 0; i < x->nodes[v].nin; i++)
                cin[v][i] += cout[u][i];
        }
    }
    for (uint32_t q = 0; q < nn && rc == 0; q++) {
        const sm__node_t *nd = &x->nodes[q];
        if (!cin[q] || nd->pop < 0)
            continue;
        sm_pop_t *pop = &net->pops[nd->pop];
        int any = 0;
        for (uint32_t j = 0; j < nd->nin; j++)
            any |= cin[q][j] * sm__drive_scale(nd, j) != 0.0;
        if (!any)
            continue;
        pop->drive = malloc(nd->nin * sizeof *pop->drive);
        if (!pop->drive) {
            rc = sm_errorf(x->eb, SM_ENOMEM, "%s: out of memory", x->file);
            break;
        }
        for (uint32_t j = 0; j < nd->nin && rc == 0; j++) {
            pop->drive[j] = cin[q][j] * sm__drive_scale(nd, j);
            if (!isfinite(pop->drive[j]))
                rc = sm_errorf(x->eb, SM_ERANGE, "%s: node '%s': the constant input to neuron %u (its biases through "
                               "the weights, times r) is not a finite number", x->file, nd->name, j);
        }
    }
out:
    for (uint32_t i = 0; cin && i < nn; i++)
        free(cin[i]);
    for (uint32_t i = 0; cout && i < nn; i++)
        free(cout[i]);
    free(cin);
    free(cout);
    for (uint32_t i = 0; sig && i < nn; i++)
        sm__terms_clear(&sig[i]);
    free(sig);
    free(ord);
    free(topo);
    free(indeg);
    free(eoff);
    free(eout);
    return rc;
}

/* libhdf5 trusts some of the file's internal addresses and sizes: on a damaged file (one flipped byte in a
 * variable-length string's heap, say) it can read outside its buffers and crash. While a thread reads a NIR
 * file, a SIGSEGV or SIGBUS it raises comes back here as an error instead of killing the process; libhdf5's own
 * state is then left as it was (its open objects stay open), so a program should not read more HDF5 files after
 * this error. The handlers are installed while any thread reads (a count under a lock) and the previous ones
 * restored after the last; a fault on a thread that is not reading goes to the previous handler. The fuzzers
 * build without the guard (SM_NO_H5_GUARD), so that a crash there stays a crash. */
#ifndef SM_NO_H5_GUARD
static _Thread_local sigjmp_buf sm__h5_jmp;
static _Thread_local volatile sig_atomic_t sm__h5_guarded, sm__h5_sig;
static struct sigaction sm__h5_old[2];
static pthread_mutex_t sm__h5_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned sm__h5_readers;
#endif
static volatile sig_atomic_t sm__h5_broken;

int sm_net_nir_broken(void) { return sm__h5_broken != 0; }

#ifndef SM_NO_H5_GUARD
static void sm__h5_fault(int sig, siginfo_t *info, void *ctx)
{
    if (sm__h5_guarded) {
        sm__h5_guarded = 0;
        sm__h5_sig = sig;
        siglongjmp(sm__h5_jmp, 1);
    }
    const struct sigaction *o = &sm__h5_old[sig == SIGBUS];
    if (o->sa_flags & SA_SIGINFO) {
        o->sa_sigaction(sig, info, ctx);
    } else if (o->sa_handler != SIG_IGN && o->sa_handler != SIG_DFL) {
        o->sa_handler(sig);
    } else { /* the default: die of this signal */
        signal(sig, SIG_DFL);
        raise(sig);
    }
}
#endif

static int sm__load_nir(const char *path, double dt_ms, sm_net_t *net, sm_errbuf_t *eb);

int sm_net_load_nir(const char *path, double dt_ms, sm_net_t *net, sm_errbuf_t *eb)
{
    memset(net, 0, sizeof *net);
#ifdef SM_NO_H5_GUARD
    return sm__load_nir(path, dt_ms, net, eb);
#else
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = sm__h5_fault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    pthread_mutex_lock(&sm__h5_lock);
    int ok = 1;
    if (sm__h5_readers == 0)
        ok = sigaction(SIGSEGV, &sa, &sm__h5_old[0]) == 0 && sigaction(SIGBUS, &sa, &sm__h5_old[1]) == 0;
    if (ok)
        sm__h5_readers++;
    pthread_mutex_unlock(&sm__h5_lock);
    if (!ok)
        return sm__load_nir(path, dt_ms, net, eb);
    int rc;
    if (sigsetjmp(sm__h5_jmp, 1) == 0) {
        sm__h5_guarded = 1;
        rc = sm__load_nir(path, dt_ms, net, eb);
        sm__h5_guarded = 0;
    } else { /* what the read had built is lost (not freed): the process should stop reading HDF5 files */
        sm__h5_broken = 1;
        memset(net, 0, sizeof *net);
        rc = sm_errorf(eb, SM_EPARSE, "%s: the HDF5 library failed on this file (%s while reading it): the file "
                                      "is damaged", path, sm__h5_sig == SIGBUS ? "bus error" : "invalid memory access");
    }
    pthread_mutex_lock(&sm__h5_lock);
    if (--sm__h5_readers == 0) {
        sigaction(SIGSEGV, &sm__h5_old[0], NULL);
        sigaction(SIGBUS, &sm__h5_old[1], NULL);
    }
    pthread_mutex_unlock(&sm__h5_lock);
    return rc;
#endif
}

static int sm__load_nir(const char *path, double dt_ms, sm_net_t *net, sm_errbuf_t *eb)
{
    sm__nir_t x = {.file = path, .dt = dt_ms, .eb = eb, .f = -1};
    sm__h5why_t why;
    H5E_auto2_t efunc;
    void *edata;
    int rc = 0;
    memset(net, 0, sizeof *net);
    if (!(dt_ms > 0.0) || !isfinite(dt_ms))
        return sm_errorf(eb, SM_EINVAL, "%s: the step must be a positive number of ms, got %g", path, dt_ms);
    FILE *probe = fopen(path, "rb");
    if (!probe)
        return sm_errorf(eb, SM_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    int isdir = fstat(fileno(probe), &st) == 0 && S_ISDIR(st.st_mode);
    fclose(probe);
    if (isdir)
        return sm_errorf(eb, SM_EIO, "%s: cannot open: %s", path, strerror(EISDIR));
    /* HDF5 prints its error stack by default; the messages here say what went wrong instead. */
    H5Eget_auto2(H5E_DEFAULT, &efunc, &edata);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
#if H5_VERSION_GE(1, 12, 0)
    htri_t is_h5 = H5Fis_accessible(path, H5P_DEFAULT);
#else
    htri_t is_h5 = H5Fis_hdf5(path);
#endif
    if (is_h5 <= 0) {
        rc = sm_errorf(eb, SM_EPARSE, "%s: not an HDF5 file (a NIR file is HDF5, as nir.write stores it)", path);
        goto out;
    }
    x.f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (x.f < 0) {
        rc = sm_errorf(eb, SM_EPARSE, "%s: cannot open as HDF5 (damaged or truncated?): %s", path, sm__h5why(&why));
        goto out;
    }
    {
        char version[64];
        int vr = sm__read_str(&x, x.f, "", "version", version, sizeof version);
        if (vr != 0 && vr != SM_ENOENT) { /* /version is optional, but must be a string when present */
            rc = vr;
            goto out;
        }
    }
    int has = sm__h5has(x.f, "node", H5I_GROUP);
    if (has <= 0) {
        rc = sm_errorf(eb, SM_EPARSE, "%s: %s", path,
                       has == 0 ? "missing group /node (a NIR file holds its graph there)" : "/node must be a group");
        goto out;
    }
    hid_t g = H5Gopen2(x.f, "node", H5P_DEFAULT);
    if (g < 0) {
        rc = sm_errorf(eb, SM_EPARSE, "%s: /node: cannot open: %s", path, sm__h5why(&why));
        goto out;
    }
    uint32_t gin, gout;
    rc = sm__visit(&x, g, "/node");
    if (rc == 0)
        rc = sm__read_graph(&x, g, "/node", "", 0, &gin, &gout);
    H5Gclose(g);
    if (rc == 0) {
        (void)sm_utf8_copy(net->name, sizeof net->name, sm__base(path));
        net->dt = dt_ms;
        rc = sm__build(&x, net);
    }
out:
    if (x.f >= 0)
        H5Fclose(x.f);
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, efunc, edata);
    sm__nodes_free(&x);
    if (rc)
        sm_net_free(net);
    return rc;
}
