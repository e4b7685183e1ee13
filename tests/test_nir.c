/* tests/test_nir.c: NIR import: the shared real files load or are refused by name, lif_norse.nir and every neuron type
 * follow their closed forms, the flat and nested braille graphs are one network, bad files and bad input refused. */
#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spikemesh/spikemesh.h"
#include "tests/nir_write.h"
#include "tests/unit.h"

static char tmpdir[64];

static const char *tpath(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", tmpdir, name);
    return buf;
}

/* The folder of real NIR files, or NULL when this checkout has none (the tests that need it are skipped). */
static const char *shared_dir(void)
{
    static char buf[1024];
    struct stat st;
    const char *src = getenv("SRCDIR");
    snprintf(buf, sizeof buf, "%s/../shared/nir", src ? src : ".");
    return stat(buf, &st) == 0 && S_ISDIR(st.st_mode) ? buf : NULL;
}

static int skip_note(const char *what)
{
    printf("\n    skipped (%s): ../shared/nir is not there from SRCDIR\n    ", what);
    return 0;
}

/* ---- reading parameters independently of the importer ---- */

/* Reads up to n values of dataset dset (an absolute path) as doubles; returns how many it has, 0 when missing. */
static size_t h5_read(const char *file, const char *dset, double *out, size_t n)
{
    H5E_auto2_t f;
    void *d;
    H5Eget_auto2(H5E_DEFAULT, &f, &d);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    size_t got = 0;
    hid_t fi = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (fi >= 0) {
        hid_t ds = H5Dopen2(fi, dset, H5P_DEFAULT);
        if (ds >= 0) {
            hid_t sp = H5Dget_space(ds);
            hssize_t np = H5Sget_simple_extent_npoints(sp);
            double *all = malloc(((size_t)np + 1) * sizeof *all);
            if (all && H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, all) >= 0) {
                got = (size_t)np;
                memcpy(out, all, (got < n ? got : n) * sizeof *out);
            }
            free(all);
            H5Sclose(sp);
            H5Dclose(ds);
        }
        H5Fclose(fi);
    }
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, f, d);
    return got;
}

static double h5_one(const char *file, const char *dset, double dflt)
{
    double v = dflt;
    return h5_read(file, dset, &v, 1) ? v : dflt;
}

/* The type string of a node (an absolute path to its group). */
static int h5_type(const char *file, const char *group, char *out, size_t cap)
{
    char path[512];
    int ok = 0;
    snprintf(path, sizeof path, "%s/type", group);
    hid_t fi = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (fi < 0)
        return 0;
    hid_t ds = H5Dopen2(fi, path, H5P_DEFAULT);
    if (ds >= 0) {
        hid_t t = H5Tcopy(H5T_C_S1);
        char *s = NULL;
        H5Tset_size(t, H5T_VARIABLE);
        if (H5Dread(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &s) >= 0 && s) {
            snprintf(out, cap, "%s", s);
            H5free_memory(s);
            ok = 1;
        }
        H5Tclose(t);
        H5Dclose(ds);
    }
    H5Fclose(fi);
    return ok;
}

/* ---- running an imported graph ---- */

typedef struct {
    sm_net_t net;
    sm_deploy_t dep;
    sm_sim_t *sim;
} nx_t;

static void write_csv(const char *path, const uint64_t *steps, const uint32_t *neurons, size_t n)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("step,neuron\n", f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%llu,%u\n", (unsigned long long)steps[i], neurons ? neurons[i] : 0u);
    fclose(f);
}

static int nx_start(nx_t *x, const char *file, double dt, const char *csv, uint32_t threads, int single)
{
    sm_errbuf_t eb = {0};
    sm_chip_t chip;
    sm_run_opts_t ro = {.duration = 1e9, .progress = 0, .threads = threads, .single = single};
    memset(x, 0, sizeof *x);
    int rc = sm_net_load_nir(file, dt, &x->net, &eb);
    if (rc) {
        fprintf(stderr, "\n%s\n", eb.msg);
        CU_FAIL("load");
        return rc;
    }
    if (csv && (rc = sm_net_load_input(&x->net, csv, &eb)) != 0) {
        fprintf(stderr, "\n%s\n", eb.msg);
        CU_FAIL("input");
        sm_net_free(&x->net);
        return rc;
    }
    if (sm_chip_resolve("loihi", &chip, &eb) || sm_deploy_build(&x->net, &chip, 1, &x->dep, &eb) ||
        sm_sim_create(&x->sim, &x->dep, &ro, &eb)) {
        fprintf(stderr, "\n%s\n", eb.msg);
        CU_FAIL("deploy");
        sm_deploy_free(&x->dep);
        sm_net_free(&x->net);
        return -1;
    }
    return 0;
}

static void nx_stop(nx_t *x)
{
    sm_sim_destroy(x->sim);
    sm_deploy_free(&x->dep);
    sm_net_free(&x->net);
}

static const sm_pop_t *find_pop(const sm_net_t *net, const char *name)
{
    for (uint32_t p = 0; p < net->npops; p++)
        if (strcmp(net->pops[p].name, name) == 0)
            return &net->pops[p];
    return NULL;
}

static int spiked(const sm_sim_t *sim, uint32_t id)
{
    uint32_t n;
    const uint32_t *ids = sm_sim_last_spikes(sim, &n);
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return 1;
    return 0;
}

/* The input spike train of the NIR paper's LIF experiment (paper/01_lif): 1 s at every 10th step. */
static size_t paper_train(uint64_t *steps)
{
    static const int d0[] = {0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0,
                             0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0,
                             0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0,
                             0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    size_t n = 0;
    for (size_t i = 0; i < sizeof d0 / sizeof d0[0]; i++)
        if (d0[i])
            steps[n++] = 10 * i;
    return n;
}

/* ---- LIF: the closed-form trace ---- */

/* An LIF node fed by an Affine node from one input: between events v(t) = v_inf + (v_e - v_inf) exp(-(t - t_e)/tau)
 * with v_inf = v_leak + R b; an input spike in step s reaches the neuron at the start of step s + 1, t = (s + 1) dt,
 * and moves v by R w / tau (rounded to a 32-bit float, as synapses store it); a spike is seen at the end of a step,
 * when v > v_threshold, and v restarts from v_reset. Parameters are read here with libhdf5, not from the import. */
static void check_lif_trace(const char *file, const char *lif, const char *aff, double dt_ms, const uint64_t *in,
                            size_t nin, uint64_t nsteps, uint32_t *nspikes)
{
    char p[256], csv[256];
    snprintf(p, sizeof p, "/node/nodes/%s/tau", lif);
    double tau = h5_one(file, p, NAN);
    snprintf(p, sizeof p, "/node/nodes/%s/r", lif);
    double r = h5_one(file, p, NAN);
    snprintf(p, sizeof p, "/node/nodes/%s/v_leak", lif);
    double vl = h5_one(file, p, NAN);
    snprintf(p, sizeof p, "/node/nodes/%s/v_threshold", lif);
    double th = h5_one(file, p, NAN);
    snprintf(p, sizeof p, "/node/nodes/%s/v_reset", lif);
    double vr = h5_one(file, p, 0.0);
    snprintf(p, sizeof p, "/node/nodes/%s/weight", aff);
    double w = h5_one(file, p, NAN);
    snprintf(p, sizeof p, "/node/nodes/%s/bias", aff);
    double b = h5_one(file, p, 0.0);
    CU_ASSERT_FATAL(isfinite(tau) && isfinite(r) && isfinite(vl) && isfinite(th) && isfinite(w));

    write_csv(tpath(csv, sizeof csv, "lif_in.csv"), in, NULL, nin);
    nx_t x;
    if (nx_start(&x, file, dt_ms, csv, 1, 0))
        return;
    const sm_pop_t *pop = find_pop(&x.net, lif);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pop);
    uint32_t id = pop->first;
    double jump = (double)(float)(r * w / tau), vinf = vl + r * b, dt = dt_ms * 1e-3;
    double te = 0.0, ve = vl, worst = 0.0;
    uint32_t mism = 0, ns = 0;
    size_t k_in = 0;
    for (uint64_t k = 0; k < nsteps; k++) {
        double t0 = (double)k * dt, t1 = (double)(k + 1) * dt;
        while (k_in < nin && in[k_in] + 1 == k) {
            ve = vinf + (ve - vinf) * exp(-(t0 - te) / tau) + jump;
            te = t0;
            k_in++;
        }
        double v = vinf + (ve - vinf) * exp(-(t1 - te) / tau);
        int s = v > th;
        if (s) {
            v = vr;
            ve = vr;
            te = t1;
            ns++;
        }
        sm_sim_step(x.sim);
        mism += s != spiked(x.sim, id);
        double e = sm_test_relerr(sm_sim_v(x.sim, id), v);
        if (e > worst)
            worst = e;
    }
    CU_ASSERT_EQUAL(mism, 0);
    CU_ASSERT(worst < 1e-9);
    if (worst >= 1e-9 || mism)
        fprintf(stderr, "\n%s: worst relative error %g, %u spike mismatches\n", file, worst, mism);
    *nspikes = ns;
    nx_stop(&x);
}

/* A graph input -> Affine -> neuron -> output, the shape of lif_norse.nir, written here with other parameters. */
static void write_chain(const char *path, const char *type, const char *const *pnames, const double *pvals, int np,
                        double w, double b, int f32)
{
    hid_t f = nw_create(path), g = nw_graph(f, "node", 1), n;
    n = nw_node(g, "input", "Input");
    nw_shape(n, "shape", 1);
    H5Gclose(n);
    n = nw_node(g, "0", "Affine");
    (f32 ? nw_f32 : nw_f64)(n, "weight", &w, 1, 1);
    (f32 ? nw_f32 : nw_f64)(n, "bias", &b, 1, 0);
    H5Gclose(n);
    n = nw_node(g, "1", type);
    for (int i = 0; i < np; i++)
        (f32 ? nw_f32 : nw_f64)(n, pnames[i], &pvals[i], 1, 0);
    H5Gclose(n);
    n = nw_node(g, "output", "Output");
    nw_shape(n, "shape", 1);
    H5Gclose(n);
    const char *e[] = {"input", "0", "0", "1", "1", "output"};
    nw_edges(g, e, 3);
    H5Gclose(g);
    nw_close(f);
}

static void test_lif_norse_trace(void)
{
    uint64_t in[128];
    size_t nin = paper_train(in);
    uint32_t ns = 0;
    const char *dir = shared_dir();
    if (!dir) {
        skip_note("lif_norse.nir");
    } else {
        char file[1100];
        snprintf(file, sizeof file, "%s/lif_norse.nir", dir);
        /* R w / tau = 400 against a threshold of 0.1: each input spike makes one output spike, one step later */
        check_lif_trace(file, "1", "0", 0.1, in, nin, 1000, &ns);
        CU_ASSERT_EQUAL(ns, nin);
    }
    /* The same graph with a weight that needs several inputs to reach threshold, a bias, a leak and a reset that are
     * not 0: a trace that crosses the threshold now and then. */
    static const char *const names[] = {"tau", "r", "v_leak", "v_threshold", "v_reset"};
    static const double vals[] = {0.0025, 1.0, 0.01, 0.1, 0.005};
    char file[256];
    write_chain(tpath(file, sizeof file, "lif_var.nir"), "LIF", names, vals, 5, 1e-4, 0.03, 1);
    check_lif_trace(file, "1", "0", 0.1, in, nin, 1000, &ns);
    CU_ASSERT(ns >= 3 && ns < nin);
    for (size_t i = 0; i < nin; i++) /* the same times in steps of 0.25 ms: another step, the same closed form */
        in[i] = in[i] * 2 / 5;
    check_lif_trace(file, "1", "0", 0.25, in, nin, 400, &ns);
    CU_ASSERT(ns >= 2);
}

/* ---- the other neuron types ---- */

/* IF: dv/dt = R I: v grows by R b per second and jumps by R w per input spike. I: the same without spikes. */
static void check_integrator(int spiking)
{
    static const char *const names[] = {"r", "v_threshold", "v_reset"};
    static const double vals[] = {1.5, 1.0, 0.1};
    char file[256], csv[256];
    double w = 0.05, b = 2.0, dt = 1e-4;
    write_chain(tpath(file, sizeof file, "if.nir"), spiking ? "IF" : "I", names, vals, spiking ? 3 : 1, w, b, 0);
    uint64_t in[200];
    size_t nin = 0;
    for (uint64_t s = 3; s < 1000; s += 7)
        in[nin++] = s;
    write_csv(tpath(csv, sizeof csv, "if_in.csv"), in, NULL, nin);
    nx_t x;
    if (nx_start(&x, file, dt * 1e3, csv, 1, 0))
        return;
    uint32_t id = find_pop(&x.net, "1")->first, ns = 0, mism = 0;
    CU_ASSERT_STRING_EQUAL(sm_pop_model_name(find_pop(&x.net, "1")), spiking ? "lif" : "li");
    double jump = (double)(float)(vals[0] * w), rate = vals[0] * b, te = 0, ve = 0, worst = 0;
    size_t k_in = 0;
    for (uint64_t k = 0; k < 1000; k++) {
        double t0 = (double)k * dt, t1 = (double)(k + 1) * dt;
        while (k_in < nin && in[k_in] + 1 == k) {
            ve = ve + rate * (t0 - te) + jump;
            te = t0;
            k_in++;
        }
        double v = ve + rate * (t1 - te);
        int s = spiking && v > vals[1];
        if (s) {
            v = ve = vals[2];
            te = t1;
            ns++;
        }
        sm_sim_step(x.sim);
        mism += s != spiked(x.sim, id);
        double e = sm_test_relerr(sm_sim_v(x.sim, id), v);
        if (k > 0 && e > worst) /* v starts at 0 */
            worst = e;
    }
    CU_ASSERT(worst < 1e-9);
    CU_ASSERT_EQUAL(mism, 0);
    CU_ASSERT(spiking ? ns > 5 : ns == 0);
    nx_stop(&x);
}

static void test_if_i(void)
{
    check_integrator(1);
    check_integrator(0);
}

/* LI: the LIF closed form without threshold. */
static void test_li(void)
{
    static const char *const names[] = {"tau", "r", "v_leak"};
    static const double vals[] = {0.005, 2.0, 0.1};
    char file[256], csv[256];
    double w = 0.001, b = 0.2, dt = 1e-4;
    write_chain(tpath(file, sizeof file, "li.nir"), "LI", names, vals, 3, w, b, 0);
    uint64_t in[] = {5, 6, 7, 50, 51, 300, 301, 302, 303, 304, 305, 600};
    size_t nin = sizeof in / sizeof in[0];
    write_csv(tpath(csv, sizeof csv, "li_in.csv"), in, NULL, nin);
    nx_t x;
    if (nx_start(&x, file, dt * 1e3, csv, 1, 0))
        return;
    uint32_t id = find_pop(&x.net, "1")->first;
    double jump = (double)(float)(vals[1] * w / vals[0]), vinf = vals[2] + vals[1] * b, te = 0, ve = vals[2], worst = 0;
    size_t k_in = 0;
    int any = 0;
    for (uint64_t k = 0; k < 1000; k++) {
        double t0 = (double)k * dt, t1 = (double)(k + 1) * dt;
        while (k_in < nin && in[k_in] + 1 == k) {
            ve = vinf + (ve - vinf) * exp(-(t0 - te) / vals[0]) + jump;
            te = t0;
            k_in++;
        }
        sm_sim_step(x.sim);
        any |= spiked(x.sim, id);
        double e = sm_test_relerr(sm_sim_v(x.sim, id), vinf + (ve - vinf) * exp(-(t1 - te) / vals[0]));
        if (e > worst)
            worst = e;
    }
    CU_ASSERT(worst < 1e-9);
    CU_ASSERT(!any);
    nx_stop(&x);
}

/* CubaLIF: tau_syn dI/dt = -I + w_in (W S + b), tau_mem dv/dt = (v_leak - v) + R I. With g = R I, g_inf = R w_in b
 * and h = g - g_inf: h(t) = h_e exp(-(t - t_e)/tau_syn), and
 *   v(t) = v_inf + (v_e - v_inf - A) exp(-(t - t_e)/tau_mem) + A exp(-(t - t_e)/tau_syn),  A = h_e tau_syn /
 * (tau_syn - tau_mem), v_inf = v_leak + g_inf. An input spike moves g by R w_in w / tau_syn; I starts at 0. */
static void check_cubalif(int spiking)
{
    static const char *const names[] = {"tau_mem", "tau_syn", "r", "v_leak", "v_threshold", "v_reset", "w_in"};
    static const double vals[] = {0.002, 0.0005, 3.0, 0.05, 0.6, 0.05, 0.8};
    char file[256], csv[256];
    double w = 0.002, b = 0.1, dt = 1e-4, tm = vals[0], ts = vals[1];
    write_chain(tpath(file, sizeof file, "cuba.nir"), spiking ? "CubaLIF" : "CubaLI", names, vals, 7, w, b, 0);
    uint64_t in[400];
    size_t nin = 0;
    for (uint64_t s = 10; s < 2000; s += (s % 3) ? 5 : 17)
        in[nin++] = s;
    write_csv(tpath(csv, sizeof csv, "cuba_in.csv"), in, NULL, nin);
    nx_t x;
    if (nx_start(&x, file, dt * 1e3, csv, 1, 0))
        return;
    uint32_t id = find_pop(&x.net, "1")->first, ns = 0, mism = 0;
    double gj = (double)(float)(vals[2] * vals[6] * w / ts), ginf = vals[2] * vals[6] * b, vinf = vals[3] + ginf;
    double te = 0, ve = vals[3], he = -ginf, worst_v = 0, worst_g = 0;
    size_t k_in = 0;
#define CUBA_AT(t, v, h)                                                                                          \
    do {                                                                                                          \
        double A_ = he * ts / (ts - tm), d_ = (t) - te;                                                           \
        v = vinf + (ve - vinf - A_) * exp(-d_ / tm) + A_ * exp(-d_ / ts);                                         \
        h = he * exp(-d_ / ts);                                                                                   \
    } while (0)
    for (uint64_t k = 0; k < 2000; k++) {
        double t0 = (double)k * dt, t1 = (double)(k + 1) * dt, v, h;
        while (k_in < nin && in[k_in] + 1 == k) {
            CUBA_AT(t0, v, h);
            ve = v;
            he = h + gj;
            te = t0;
            k_in++;
        }
        CUBA_AT(t1, v, h);
        int s = spiking && v > vals[4];
        if (s) {
            ve = v = vals[5];
            he = h;
            te = t1;
            ns++;
        }
        sm_sim_step(x.sim);
        mism += s != spiked(x.sim, id);
        /* ge also holds what the input spikes of this step add for the next one */
        double g = ginf + h;
        for (size_t i = k_in; i < nin && in[i] <= k; i++)
            g += in[i] == k ? gj : 0.0;
        double ev = sm_test_relerr(sm_sim_v(x.sim, id), v);
        double eg = fabs(sm_sim_ge(x.sim, id) - g) / fmax(fabs(g), ginf);
        if (ev > worst_v)
            worst_v = ev;
        if (eg > worst_g)
            worst_g = eg;
    }
#undef CUBA_AT
    CU_ASSERT(worst_v < 1e-9);
    CU_ASSERT(worst_g < 1e-9);
    CU_ASSERT_EQUAL(mism, 0);
    CU_ASSERT(spiking ? ns > 10 : ns == 0);
    if (worst_v >= 1e-9 || worst_g >= 1e-9 || mism)
        fprintf(stderr, "\ncuba: worst v %g, g %g, %u mismatches, %u spikes\n", worst_v, worst_g, mism, ns);
    nx_stop(&x);
}

static void test_cubalif(void)
{
    check_cubalif(1);
    check_cubalif(0);
}

/* Threshold: no state; in each step v is the sum of the weights arriving in it plus the bias. */
static void test_threshold(void)
{
    char file[256], csv[256];
    hid_t f = nw_create(tpath(file, sizeof file, "thr.nir")), g = nw_graph(f, "node", 1), n;
    nw_input(g, "in", 2);
    double W[] = {0.3, 0.3, 1.2, 0.0}, B[] = {0.1, -0.6};
    nw_affine(g, "a", W, 2, 2, B);
    n = nw_node(g, "t", "Threshold");
    double th[] = {0.5, 0.5};
    nw_f64(n, "threshold", th, 2, 0);
    H5Gclose(n);
    const char *e[] = {"in", "a", "a", "t"};
    nw_edges(g, e, 2);
    H5Gclose(g);
    nw_close(f);
    uint64_t st[] = {3, 3, 8, 12, 20, 20};
    uint32_t ne[] = {0, 1, 1, 0, 0, 1};
    write_csv(tpath(csv, sizeof csv, "thr_in.csv"), st, ne, 6);
    nx_t x;
    if (nx_start(&x, file, 1.0, csv, 1, 0))
        return;
    uint32_t id = find_pop(&x.net, "t")->first, bad = 0, spikes = 0;
    for (uint64_t k = 0; k < 30; k++) {
        int a0 = 0, a1 = 0;
        for (int i = 0; i < 6; i++)
            if (st[i] + 1 == k) {
                a0 |= ne[i] == 0;
                a1 |= ne[i] == 1;
            }
        double v0 = (a0 ? (double)0.3f : 0) + (a1 ? (double)0.3f : 0) + 0.1, v1 = (a0 ? (double)1.2f : 0) - 0.6;
        int s0 = v0 > 0.5, s1 = v1 > 0.5;
        sm_sim_step(x.sim);
        bad += spiked(x.sim, id) != s0 || spiked(x.sim, id + 1) != s1;
        /* after a spike v is v_reset, 0 */
        bad += sm_test_relerr(sm_sim_v(x.sim, id), s0 ? 0.0 : v0) > 1e-12;
        bad += sm_test_relerr(sm_sim_v(x.sim, id + 1), s1 ? 0.0 : v1) > 1e-12;
        spikes += s0 + s1;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(spikes, 5); /* (0 with 1) at 3 and 20; 0 alone at 3, 12 and 20 */
    nx_stop(&x);
}

/* Scale, Delay, Linear and Affine in a chain compose into per-synapse weights and delays; a bias reaches the drive
 * through the nodes after it; a nested graph passes its signal through its Input and Output; "graph.node" names a
 * node of a nested graph. */
static void test_composition(void)
{
    char file[256];
    sm_net_t net;
    sm_errbuf_t eb = {0};
    hid_t f = nw_create(tpath(file, sizeof file, "chain.nir")), g = nw_graph(f, "node", 1), n, sg;
    n = nw_node(g, "in", "Input");
    nw_shape(n, "shape", 2);
    H5Gclose(n);
    n = nw_node(g, "sc", "Scale");
    double sc[] = {2.0, -1.0};
    nw_f64(n, "scale", sc, 2, 0);
    H5Gclose(n);
    n = nw_node(g, "dl", "Delay");
    double dl[] = {0.0002, 0.0005};
    nw_f64(n, "delay", dl, 2, 0);
    H5Gclose(n);
    n = nw_node(g, "lin", "Linear");
    double L[] = {1, 2, 3, 4, 5, 6};
    nw_f64(n, "weight", L, 3, 2);
    H5Gclose(n);
    double A[] = {1, 0, 0, 0, 1, 0, 0, 0, 0.5}, B[] = {0.1, 0.2, 0.3};
    nw_affine(g, "a2", A, 3, 3, B);
    double tau[] = {0.01, 0.01, 0.01}, r[] = {2, 2, 2}, z[] = {0, 0, 0}, one[] = {1, 1, 1};
    nw_lif(g, "lif", 3, tau, r, z, one);
    sg = nw_node(g, "sub", "NIRGraph");
    n = nw_node(sg, "input", "Input");
    nw_shape(n, "shape", 3);
    H5Gclose(n);
    n = nw_node(sg, "li", "LI");
    double tli[] = {0.004, 0.004, 0.004};
    nw_f64(n, "tau", tli, 3, 0);
    nw_f64(n, "r", one, 3, 0);
    nw_f64(n, "v_leak", z, 3, 0);
    H5Gclose(n);
    n = nw_node(sg, "output", "Output");
    nw_shape(n, "shape", 3);
    H5Gclose(n);
    const char *se[] = {"input", "li", "li", "output"};
    nw_edges(sg, se, 2);
    H5Gclose(sg);
    const char *e[] = {"in", "sc", "sc", "dl", "dl", "lin", "lin", "a2", "a2", "lif", "lif", "sub", "lif", "sub.li"};
    nw_edges(g, e, 7);
    H5Gclose(g);
    nw_close(f);

    CU_ASSERT_EQUAL_FATAL(sm_net_load_nir(file, 0.1, &net, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(net.npops, 3);
    CU_ASSERT_STRING_EQUAL(net.pops[0].name, "in");
    CU_ASSERT_STRING_EQUAL(net.pops[1].name, "lif");
    CU_ASSERT_STRING_EQUAL(net.pops[2].name, "sub.li");
    CU_ASSERT_EQUAL(net.pops[2].lif.no_spike, 1);
    /* in -> lif: element 0 of the signal is delayed 2 steps, element 1 is delayed 5; on top of the step every edge
     * takes. Weights: a2 * lin * scale, times R / tau = 200. */
    CU_ASSERT_EQUAL_FATAL(net.nprojs, 3);
    const sm_proj_t *p0 = &net.projs[0], *p1 = &net.projs[1], *p2 = &net.projs[2];
    CU_ASSERT(p0->pre == 0 && p0->post == 1 && p0->delay_steps == 3 && p0->npairs == 3);
    CU_ASSERT(p1->pre == 0 && p1->post == 1 && p1->delay_steps == 6 && p1->npairs == 3);
    double want0[] = {2 * 200, 6 * 200, 5 * 200}, want1[] = {-2 * 200, -4 * 200, -3 * 200};
    for (uint32_t k = 0; k < 3 && p0->npairs == 3 && p1->npairs == 3; k++) {
        CU_ASSERT(p0->pairs[2 * k] == 0 && p0->pairs[2 * k + 1] == k);
        CU_ASSERT_EQUAL(p0->weights[k], (float)want0[k]);
        CU_ASSERT(p1->pairs[2 * k] == 1 && p1->pairs[2 * k + 1] == k);
        CU_ASSERT_EQUAL(p1->weights[k], (float)want1[k]);
    }
    /* lif -> sub.li: through the nested graph and through "sub.li": two identity paths, weight 2 R / tau = 500 */
    CU_ASSERT(p2->pre == 1 && p2->post == 2 && p2->delay_steps == 1 && p2->npairs == 3);
    for (uint32_t k = 0; k < 3 && p2->npairs == 3; k++) {
        CU_ASSERT(p2->pairs[2 * k] == k && p2->pairs[2 * k + 1] == k);
        CU_ASSERT_EQUAL(p2->weights[k], 500.0f);
    }
    /* the drive of lif: R * a2 bias */
    CU_ASSERT_PTR_NOT_NULL_FATAL(net.pops[1].drive);
    CU_ASSERT_DOUBLE_EQUAL(net.pops[1].drive[0], 0.2, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(net.pops[1].drive[2], 0.6, 1e-15);
    CU_ASSERT_PTR_NULL(net.pops[2].drive);
    CU_ASSERT_EQUAL(net.pops[1].lif.tau_m, 10.0); /* 0.01 s */
    sm_net_free(&net);

    /* A delay that is not a whole number of steps of the chosen dt */
    CU_ASSERT_NOT_EQUAL(sm_net_load_nir(file, 0.3, &net, &eb), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "/node/nodes/dl/delay: value 0"));
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "whole number of steps"));
}

/* A constant input too large for a double (bias 1e300 through r 1e300) is refused, naming the node (the drive was
 * inf, and the neurons NaN). */
static void test_drive_overflow(void)
{
    char file[256];
    sm_net_t net;
    sm_errbuf_t eb = {0};
    hid_t f = nw_create(tpath(file, sizeof file, "drive_inf.nir")), g = nw_graph(f, "node", 1);
    nw_input(g, "in", 2);
    double A[] = {0, 0, 0, 0}, B[] = {1.0, 1e300}; /* no synapses: only the bias reaches the LIF */
    nw_affine(g, "aff", A, 2, 2, B);
    double tau[] = {0.01, 0.01}, r[] = {1e300, 1e300}, z[] = {0, 0}, one[] = {1, 1};
    nw_lif(g, "lif", 2, tau, r, z, one);
    const char *e[] = {"in", "aff", "aff", "lif"};
    nw_edges(g, e, 2);
    H5Gclose(g);
    nw_close(f);
    CU_ASSERT_EQUAL(sm_net_load_nir(file, 0.1, &net, &eb), SM_ERANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "node 'lif': the constant input to neuron 1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "not a finite number"));
}

/* ---- the real files ---- */

static void test_shared_files(void)
{
    const char *dir = shared_dir();
    if (!dir) {
        skip_note("the real NIR files");
        return;
    }
    DIR *d = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    struct dirent *de;
    int loaded = 0, refused = 0;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".nir") != 0)
            continue;
        char file[1400];
        snprintf(file, sizeof file, "%s/%s", dir, de->d_name);
        sm_net_t net;
        sm_errbuf_t eb = {0};
        int rc = sm_net_load_nir(file, 0.1, &net, &eb);
        if (rc == 0) {
            loaded++;
            /* and it runs: random input spikes into every input neuron */
            char csv[256];
            uint64_t st[300];
            uint32_t ne[300], nin = 0;
            for (uint32_t p = 0; p < net.npops; p++)
                if (net.pops[p].model == SM_MODEL_SPIKE_SOURCE)
                    nin += net.pops[p].size;
            sm_net_free(&net);
            CU_ASSERT(nin > 0);
            uint32_t rs = 12345;
            for (int i = 0; i < 300; i++) {
                rs = rs * 1103515245u + 12345u;
                st[i] = (uint64_t)i;
                ne[i] = (rs >> 8) % (nin ? nin : 1);
            }
            write_csv(tpath(csv, sizeof csv, "shared_in.csv"), st, ne, 300);
            nx_t x;
            if (nx_start(&x, file, 0.1, csv, 2, 0) == 0) {
                for (int k = 0; k < 400; k++)
                    sm_sim_step(x.sim);
                CU_ASSERT(sm_sim_stats(x.sim)->spikes >= 300);
                nx_stop(&x);
            }
            continue;
        }
        /* refused: it names a node and its type, and the file agrees */
        refused++;
        char node[128], type[64], group[256], actual[64] = "";
        const char *m = strstr(eb.msg, ": node \"");
        CU_ASSERT_PTR_NOT_NULL(m);
        CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "which spikemesh does not import"));
        if (m && sscanf(m, ": node \"%127[^\"]\" has type %63[A-Za-z0-9_]", node, type) == 2) {
            snprintf(group, sizeof group, "/node/nodes/%s", node);
            CU_ASSERT(h5_type(file, group, actual, sizeof actual));
            CU_ASSERT_STRING_EQUAL(actual, type);
        } else {
            CU_FAIL("the message names no node");
            fprintf(stderr, "\n%s\n", eb.msg);
        }
        if (strcmp(de->d_name, "cnn_sinabs.nir") == 0) {
            CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "Conv2d"));
            CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "SumPool2d"));
            CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "Flatten"));
        }
    }
    closedir(d);
    CU_ASSERT(loaded >= 5);
    CU_ASSERT(refused >= 1);
}

/* The braille network written flat and with its recurrent layer as a nested graph: the same populations (sizes,
 * models, parameters, drives; the names differ only in the nested layer's node key), the same synapses and the same
 * spikes for the same input, at any thread count. */
static void test_braille_same(void)
{
    const char *dir = shared_dir();
    if (!dir) {
        skip_note("the braille files");
        return;
    }
    char fa[1100], fb[1100], csv[256];
    snprintf(fa, sizeof fa, "%s/braille_rnn_cubalif.nir", dir);
    snprintf(fb, sizeof fb, "%s/braille_rnn_cubalif_subgraph.nir", dir);
    uint64_t st[2000];
    uint32_t ne[2000];
    size_t n = 0;
    uint32_t rs = 7;
    for (uint64_t s = 0; s < 3000 && n < 2000; s++)
        for (uint32_t i = 0; i < 12 && n < 2000; i++) {
            rs = rs * 1103515245u + 12345u;
            if ((rs >> 16) % 100 < 4) {
                st[n] = s;
                ne[n++] = i;
            }
        }
    write_csv(tpath(csv, sizeof csv, "braille_in.csv"), st, ne, n);
    nx_t a, b, c;
    if (nx_start(&a, fa, 0.1, csv, 1, 0))
        return;
    if (nx_start(&b, fb, 0.1, csv, 3, 0)) {
        nx_stop(&a);
        return;
    }
    CU_ASSERT_EQUAL_FATAL(a.net.npops, b.net.npops);
    CU_ASSERT_EQUAL(a.net.npops, 3);
    CU_ASSERT_EQUAL(a.net.n, 12 + 38 + 7);
    for (uint32_t p = 0; p < a.net.npops; p++) {
        const sm_pop_t *x = &a.net.pops[p], *y = &b.net.pops[p];
        CU_ASSERT(x->size == y->size && x->model == y->model && x->first == y->first);
        const sm_lif_params_t *l = &x->lif, *m = &y->lif;
        CU_ASSERT(l->tau_m == m->tau_m && l->tau_e == m->tau_e && l->tau_i == m->tau_i && l->v_thresh == m->v_thresh &&
                  l->v_reset == m->v_reset && l->v_rest == m->v_rest && l->t_ref == m->t_ref &&
                  l->i_bias == m->i_bias && l->delta == m->delta && l->no_leak == m->no_leak &&
                  l->no_spike == m->no_spike && l->stateless == m->stateless);
        CU_ASSERT(x->v_init_lo == y->v_init_lo && x->v_init_hi == y->v_init_hi);
        CU_ASSERT_EQUAL((x->drive == NULL), (y->drive == NULL));
        if (x->drive && y->drive)
            CU_ASSERT_EQUAL(memcmp(x->drive, y->drive, x->size * sizeof *x->drive), 0);
    }
    CU_ASSERT_STRING_EQUAL(a.net.pops[1].name, "lif1.lif");
    CU_ASSERT_STRING_EQUAL(b.net.pops[1].name, "lif1.lif1");
    CU_ASSERT_EQUAL_FATAL(a.net.nprojs, b.net.nprojs);
    for (uint32_t k = 0; k < a.net.nprojs; k++) {
        const sm_proj_t *x = &a.net.projs[k], *y = &b.net.projs[k];
        CU_ASSERT(x->pre == y->pre && x->post == y->post && x->delay_steps == y->delay_steps &&
                  x->npairs == y->npairs && x->rule == y->rule);
        if (x->npairs == y->npairs) {
            CU_ASSERT_EQUAL(memcmp(x->pairs, y->pairs, 2 * x->npairs * sizeof *x->pairs), 0);
            CU_ASSERT_EQUAL(memcmp(x->weights, y->weights, x->npairs * sizeof *x->weights), 0);
        }
    }
    CU_ASSERT_EQUAL(a.dep.nsyn, 12 * 38 + 38 * 38 + 38 * 7);
    CU_ASSERT_EQUAL_FATAL(a.dep.nsyn, b.dep.nsyn);
    CU_ASSERT_EQUAL(memcmp(a.dep.syn, b.dep.syn, a.dep.nsyn * sizeof *a.dep.syn), 0);
    uint64_t na, nb, nc;
    uint64_t ha = sm_test_spike_digest(a.sim, 3000, &na), hb = sm_test_spike_digest(b.sim, 3000, &nb);
    CU_ASSERT(na > n);
    CU_ASSERT_EQUAL(na, nb);
    CU_ASSERT_EQUAL(ha, hb);
    nx_stop(&a);
    nx_stop(&b);
    /* single precision: its own spikes, the same for both files */
    if (nx_start(&a, fa, 0.1, csv, 2, 1) == 0 && nx_start(&c, fb, 0.1, csv, 1, 1) == 0) {
        ha = sm_test_spike_digest(a.sim, 3000, &na);
        uint64_t hc = sm_test_spike_digest(c.sim, 3000, &nc);
        CU_ASSERT_EQUAL(ha, hc);
        nx_stop(&a);
        nx_stop(&c);
    }
}

/* ---- refusals ---- */

/* Runs `spikemesh info FILE` (when $SPIKEMESH names the program): exit 2 and one line on stderr with `want`. */
static void cli_refuses(const char *file, const char *want)
{
    const char *prog = getenv("SPIKEMESH");
    char cmd[2048], errf[256], line[2048] = "";
    if (!prog || access(prog, X_OK) != 0)
        return;
    snprintf(cmd, sizeof cmd, "'%s' info '%s' >/dev/null 2>'%s'", prog, file, tpath(errf, sizeof errf, "cli.err"));
    int st = system(cmd);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    FILE *f = fopen(errf, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    int lines = 0;
    char buf[2048];
    while (fgets(buf, sizeof buf, f)) {
        if (lines++ == 0)
            snprintf(line, sizeof line, "%s", buf);
    }
    fclose(f);
    CU_ASSERT_EQUAL(lines, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(line, want));
    CU_ASSERT_EQUAL(strncmp(line, "spikemesh info: ", 16), 0);
    if (!strstr(line, want))
        fprintf(stderr, "\nwanted \"%s\" in: %s", want, line);
}

/* Loading must fail with a message holding every string of want[] (and the command line must agree). */
static void refuses(const char *file, const char *const *want, int nwant)
{
    sm_net_t net;
    sm_errbuf_t eb = {0};
    int rc = sm_net_load_nir(file, 1.0, &net, &eb);
    CU_ASSERT(rc < 0);
    if (rc == 0) {
        sm_net_free(&net);
        fprintf(stderr, "\n%s: loaded, should have been refused\n", file);
        return;
    }
    CU_ASSERT_EQUAL(net.npops, 0);
    for (int i = 0; i < nwant; i++) {
        CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, want[i]));
        if (!strstr(eb.msg, want[i]))
            fprintf(stderr, "\nwanted \"%s\" in: %s\n", want[i], eb.msg);
    }
    cli_refuses(file, want[nwant - 1]);
}

/* A small good graph: in(2) -> w (Linear 3 x 2) -> lif(3) -> out. Variants break one thing. */
enum { BAD_NONE, BAD_NO_TYPE, BAD_EDGE, BAD_SHAPE, BAD_UNSUPPORTED, BAD_HETERO, BAD_CYCLE, BAD_NO_PARAM,
       BAD_INTO_INPUT, BAD_RANK, BAD_NOT_GRAPH, BAD_NEG_TAU };

static void write_small(const char *path, int bad)
{
    hid_t f = nw_create(path), g = nw_graph(f, "node", bad != BAD_NO_TYPE && bad != BAD_NOT_GRAPH), n;
    if (bad == BAD_NOT_GRAPH)
        nw_str(g, "type", "LIF");
    n = nw_node(g, "in", "Input");
    nw_shape(n, "shape", 2);
    H5Gclose(n);
    n = nw_node(g, "w", "Linear");
    double W[] = {1, 2, 3, 4, 5, 6};
    if (bad == BAD_RANK)
        nw_f64(n, "weight", W, 6, 0);
    else
        nw_f64(n, "weight", W, bad == BAD_SHAPE ? 2 : 3, bad == BAD_SHAPE ? 3 : 2);
    H5Gclose(n);
    n = nw_node(g, "lif", "LIF");
    double tau[] = {0.01, bad == BAD_HETERO ? 0.02 : 0.01, bad == BAD_NEG_TAU ? -1 : 0.01}, one[] = {1, 1, 1};
    nw_f64(n, "tau", tau, 3, 0);
    nw_f64(n, "r", one, 3, 0);
    if (bad != BAD_NO_PARAM)
        nw_f64(n, "v_leak", one, 3, 0);
    nw_f64(n, "v_threshold", one, 3, 0);
    H5Gclose(n);
    n = nw_node(g, "out", "Output");
    nw_shape(n, "shape", 3);
    H5Gclose(n);
    if (bad == BAD_UNSUPPORTED) {
        n = nw_node(g, "conv", "Conv1d");
        H5Gclose(n);
        n = nw_node(g, "pool", "AvgPool2d");
        H5Gclose(n);
    }
    if (bad == BAD_CYCLE) {
        n = nw_node(g, "w2", "Scale");
        double s[] = {1, 1};
        nw_f64(n, "scale", s, 2, 0);
        H5Gclose(n);
    }
    const char *e[16] = {"in", "w", "w", "lif", "lif", "out"};
    size_t ne = 3;
    if (bad == BAD_EDGE) {
        e[2 * ne] = "lif";
        e[2 * ne + 1] = "nosuch";
        ne++;
    }
    if (bad == BAD_CYCLE) {
        const char *c[] = {"in", "w2", "w2", "w2"};
        memcpy(e + 2 * ne, c, sizeof c);
        ne += 2;
    }
    if (bad == BAD_INTO_INPUT) {
        e[2 * ne] = "w";
        e[2 * ne + 1] = "in";
        ne++;
    }
    nw_edges(g, e, ne);
    H5Gclose(g);
    nw_close(f);
}

static void copy_truncated(const char *from, const char *to, long keep)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (long i = 0; i < keep; i++) {
        int ch = fgetc(a);
        if (ch == EOF)
            break;
        fputc(ch, b);
    }
    fclose(a);
    fclose(b);
}

static void test_bad_files(void)
{
    char file[256], cut[256];
    sm_net_t net;
    sm_errbuf_t eb = {0};
    write_small(tpath(file, sizeof file, "good.nir"), BAD_NONE);
    CU_ASSERT_EQUAL_FATAL(sm_net_load_nir(file, 1.0, &net, &eb), 0);
    CU_ASSERT_EQUAL(net.n, 5);
    sm_net_free(&net);

    /* truncated copies of a good file, cut at several places: refused, never a crash */
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(stat(file, &st), 0);
    long cuts[] = {0, 7, 100, 800, 2000, st.st_size / 2, st.st_size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        copy_truncated(file, tpath(cut, sizeof cut, "cut.nir"), cuts[i]);
        CU_ASSERT(sm_net_load_nir(cut, 1.0, &net, &eb) < 0);
    }
    copy_truncated(file, tpath(cut, sizeof cut, "cut.nir"), st.st_size / 2);
    refuses(cut, (const char *const[]){"cut.nir: cannot open as HDF5 (damaged or truncated?): truncated file"}, 1);

    FILE *t = fopen(tpath(file, sizeof file, "text.nir"), "w");
    fputs("step,neuron\n0,0\n", t);
    fclose(t);
    refuses(file, (const char *const[]){"text.nir: not an HDF5 file"}, 1);
    refuses(tpath(file, sizeof file, "absent.nir"), (const char *const[]){"absent.nir: cannot open: No such file"}, 1);

    write_small(tpath(file, sizeof file, "no_type.nir"), BAD_NO_TYPE);
    refuses(file, (const char *const[]){"no_type.nir: /node/type: missing"}, 1);
    write_small(tpath(file, sizeof file, "not_graph.nir"), BAD_NOT_GRAPH);
    refuses(file, (const char *const[]){"not_graph.nir: /node/type: is \"LIF\"; expected \"NIRGraph\""}, 1);
    write_small(tpath(file, sizeof file, "edge.nir"), BAD_EDGE);
    refuses(file, (const char *const[]){"edge.nir: /node/edges: edge 3 (lif -> nosuch): no node named \"nosuch\""}, 1);
    write_small(tpath(file, sizeof file, "shape.nir"), BAD_SHAPE);
    refuses(file,
            (const char *const[]){"shape.nir: edge in -> w: \"in\" (Input) puts out 2 values, but \"w\" (Linear, "
                                  "weight 2 x 3) takes 3"},
            1);
    write_small(tpath(file, sizeof file, "rank.nir"), BAD_RANK);
    refuses(file, (const char *const[]){"rank.nir: /node/nodes/w/weight: must be a matrix"}, 1);
    write_small(tpath(file, sizeof file, "unsup.nir"), BAD_UNSUPPORTED);
    refuses(file,
            (const char *const[]){"unsup.nir: /node/nodes/conv: node \"conv\" has type Conv1d, which spikemesh does not "
                                  "import (nor \"pool\" AvgPool2d)"},
            1);
    write_small(tpath(file, sizeof file, "hetero.nir"), BAD_HETERO);
    refuses(file,
            (const char *const[]){"hetero.nir: /node/nodes/lif/tau: the neurons of a node must share this parameter, "
                                  "but neuron 0 has 0.01 and neuron 1 has 0.02"},
            1);
    write_small(tpath(file, sizeof file, "negtau.nir"), BAD_NEG_TAU);
    refuses(file, (const char *const[]){"negtau.nir: /node/nodes/lif/tau: time constants must be positive, got -1"}, 1);
    write_small(tpath(file, sizeof file, "cycle.nir"), BAD_CYCLE);
    refuses(file, (const char *const[]){"node \"w2\" (Scale) is on a cycle of weight nodes with no neuron"}, 1);
    write_small(tpath(file, sizeof file, "noparam.nir"), BAD_NO_PARAM);
    refuses(file, (const char *const[]){"noparam.nir: /node/nodes/lif: missing dataset \"v_leak\""}, 1);
    write_small(tpath(file, sizeof file, "into_input.nir"), BAD_INTO_INPUT);
    refuses(file, (const char *const[]){"edge w -> in: an Input node takes no input"}, 1);
}

/* ---- input spike files ---- */

static void bad_input(sm_net_t *net, const char *name, const char *text, const char *want)
{
    char file[256];
    sm_errbuf_t eb = {0};
    FILE *f = fopen(tpath(file, sizeof file, name), "w");
    fputs(text, f);
    fclose(f);
    CU_ASSERT(sm_net_load_input(net, file, &eb) < 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, want));
    if (!strstr(eb.msg, want))
        fprintf(stderr, "\nwanted \"%s\" in: %s\n", want, eb.msg);
}

static void test_input_file(void)
{
    char file[256], in[256];
    sm_net_t net;
    sm_errbuf_t eb = {0};
    write_small(tpath(file, sizeof file, "small.nir"), BAD_NONE);
    CU_ASSERT_EQUAL_FATAL(sm_net_load_nir(file, 1.0, &net, &eb), 0);
    FILE *f = fopen(tpath(in, sizeof in, "ok.csv"), "w");
    fputs("step,neuron\r\n0,1\r\n0,0\r\n5,1\r\n", f); /* CRLF and any neuron order within a step */
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(sm_net_load_input(&net, in, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(net.pops[0].nspikes, 3);
    CU_ASSERT(net.pops[0].spikes[0].step == 0 && net.pops[0].spikes[0].neuron == 0);
    CU_ASSERT(net.pops[0].spikes[1].step == 0 && net.pops[0].spikes[1].neuron == 1);
    CU_ASSERT(net.pops[0].spikes[2].step == 5 && net.pops[0].spikes[2].neuron == 1);
    f = fopen(tpath(file, sizeof file, "header_only.csv"), "w");
    fputs("step,neuron\n", f);
    fclose(f);
    CU_ASSERT_EQUAL(sm_net_load_input(&net, file, &eb), 0); /* no spikes at all */
    CU_ASSERT_EQUAL(net.pops[0].nspikes, 0);
    CU_ASSERT_EQUAL_FATAL(sm_net_load_input(&net, in, &eb), 0);
    bad_input(&net, "h.csv", "time,id\n0,0\n", "h.csv:1: the first line must be the header \"step,neuron\"");
    bad_input(&net, "e.csv", "", "e.csv:1: the file is empty");
    bad_input(&net, "m.csv", "step,neuron\n0,0\n1;1\n", "m.csv:3: expected STEP,NEURON");
    bad_input(&net, "m2.csv", "step,neuron\n0,0\n\n", "m2.csv:3: expected STEP,NEURON");
    bad_input(&net, "m3.csv", "step,neuron\n-1,0\n", "m3.csv:2: expected STEP,NEURON");
    bad_input(&net, "m4.csv", "step,neuron\n1,0,3\n", "m4.csv:2: expected STEP,NEURON");
    bad_input(&net, "r.csv", "step,neuron\n0,0\n2,2\n", "r.csv:3: neuron 2 is out of range: the input populations have "
                                                        "2 neurons (0 to 1)");
    bad_input(&net, "u.csv", "step,neuron\n3,0\n4,1\n2,0\n", "u.csv:4: step 2 comes after step 4");
    bad_input(&net, "d.csv", "step,neuron\n3,1\n3,0\n3,1\n", "d.csv:4: neuron 1 spikes twice in step 3 (also on line 2)");
    bad_input(&net, "big.csv", "step,neuron\n99999999999999999999,0\n", "big.csv:2: expected STEP,NEURON");
    CU_ASSERT_EQUAL(sm_net_load_input(&net, tpath(file, sizeof file, "none.csv"), &eb), SM_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "none.csv: cannot open: No such file or directory"));
    /* a failed read leaves the spikes read before */
    CU_ASSERT_EQUAL(net.pops[0].nspikes, 3);
    sm_net_free(&net);
    CU_ASSERT_EQUAL_FATAL(sm_net_builtin("cuba:100", &net, &eb), 0);
    CU_ASSERT_EQUAL(sm_net_load_input(&net, in, &eb), SM_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "has no spike_source population"));
    sm_net_free(&net);
}

/* Spike sources alone: the kernel emits exactly the listed spikes of its range. */
static void test_source_step(void)
{
    sm_input_spike_t ev[] = {{0, 1}, {0, 4}, {2, 0}, {2, 2}, {2, 3}, {2, 3}, {7, 5}};
    uint32_t out[8];
    CU_ASSERT_EQUAL(sm_core_source_step(ev, 7, 0, 0, 6, 100, out), 2);
    CU_ASSERT(out[0] == 101 && out[1] == 104);
    CU_ASSERT_EQUAL(sm_core_source_step(ev, 7, 2, 1, 3, 50, out), 2); /* neurons 1..3: 2 and 3 (once) */
    CU_ASSERT(out[0] == 51 && out[1] == 52);
    CU_ASSERT_EQUAL(sm_core_source_step(ev, 7, 1, 0, 6, 0, out), 0);
    CU_ASSERT_EQUAL(sm_core_source_step(ev, 7, 7, 0, 5, 0, out), 0);
    CU_ASSERT_EQUAL(sm_core_source_step(ev, 7, 7, 5, 1, 9, out), 1);
    CU_ASSERT_EQUAL(out[0], 9);
    CU_ASSERT_EQUAL(sm_core_source_step(ev, 0, 0, 0, 6, 0, out), 0);
}

static int suite_init(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sm_test_nirXXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int suite_clean(void)
{
    if (getenv("SM_TEST_KEEP")) { /* for debugging: keep the files written */
        printf("\n    (kept %s)\n", tmpdir);
        return 0;
    }
    DIR *d = opendir(tmpdir);
    struct dirent *de;
    char p[512];
    while (d && (de = readdir(d)) != NULL)
        if (de->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", tmpdir, de->d_name);
            remove(p);
        }
    if (d)
        closedir(d);
    rmdir(tmpdir);
    return 0;
}

int sm_test_nir_register(void)
{
    CU_pSuite s = CU_add_suite("nir", suite_init, suite_clean);
    if (!s || !CU_add_test(s, "every shared NIR file loads or is refused by node and type", test_shared_files) ||
        !CU_add_test(s, "a constant input beyond a double is refused", test_drive_overflow) ||
        !CU_add_test(s, "lif_norse.nir and variants follow the closed-form LIF trace", test_lif_norse_trace) ||
        !CU_add_test(s, "IF and I: closed-form integrator", test_if_i) ||
        !CU_add_test(s, "LI: closed-form leaky integrator", test_li) ||
        !CU_add_test(s, "CubaLIF and CubaLI: closed-form synaptic current and membrane", test_cubalif) ||
        !CU_add_test(s, "Threshold: stateless, per step", test_threshold) ||
        !CU_add_test(s, "Scale, Delay, Linear, Affine, nested graphs compose", test_composition) ||
        !CU_add_test(s, "braille flat and nested: one network, the same spikes", test_braille_same) ||
        !CU_add_test(s, "bad files are refused with a clear message", test_bad_files) ||
        !CU_add_test(s, "input spike files: format and errors", test_input_file) ||
        !CU_add_test(s, "spike source kernel", test_source_step))
        return -1;
    return 0;
}
