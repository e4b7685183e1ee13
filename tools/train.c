/* tools/train.c: spikemesh train: e-prop training of a recurrent spiking network on a built-in task (pattern,
 * evidence) or a task JSON file; learning curve (CSV, SVG) and the trained network as network JSON. */
#include <errno.h>
#include <signal.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include <uv.h>

#include "tools/cli.h"
#include "spikemesh/spikemesh.h"

/* The most trials in a batch (--batch, and a task file's batch) */
#define SM__MAX_BATCH 65536
#define SM__STR2(x) #x
#define SM__STR(x) SM__STR2(x)

static const char *const sm_usage_train =
    "usage: spikemesh train TASK [OPTIONS]\n"
    "\n"
    "Trains a recurrent network of LIF and ALIF neurons with e-prop (docs/eprop.md) and saves it as a network\n"
    "that `spikemesh run` loads. TASK is a built-in task, pattern (regression on a sum of sines) or evidence\n"
    "(evidence accumulation, classification), or a task JSON file (docs/eprop.md).\n"
    "\n"
    "options:\n"
    "  --iterations N     weight updates (default: the task's, pattern 400, evidence 500)\n"
    "  --batch B          trials per update (default: the task's, pattern 1, evidence 32)\n"
    "  --lr X             learning rate of Adam (default: the task's; evidence decays it by 0.7 every 100\n"
    "                     iterations, docs/eprop.md)\n"
    "  --seed N           random seed for weights and trials (default 1)\n"
    "  --threads N        worker threads (default: one per CPU); results are identical for any N\n"
    "  --test-trials N    classification: fresh trials to measure the accuracy on at the end (default 256)\n"
    "  --trace-bits N     fixed-point traces of N bits (default 0: float64, the reference)\n"
    "  --weight-bits N    fixed-point weights of N bits (default 0: float64)\n"
    "  --update-every N   update the weights every N steps within each trial and at its end, instead of once\n"
    "                     per batch (default: the task's update_every, 0: once per batch)\n"
    "  --chip SPEC        the chip whose synapse memory must hold weights and traces (default loihi)\n"
    "  --out DIR          write learning_curve.csv, learning_curve.svg, trained_network.json and traffic.json\n"
    "                     into DIR\n"
    "  --json             print one JSON object at the end instead of a line per iteration\n"
    "  --progress         always show the progress bar (default: only when stderr is a terminal)\n"
    "  --no-progress      never show it\n"
    "  -h, --help         show this help\n"
    "\n"
    "exit status: 0 done, 2 bad input, 130 stopped by SIGINT/SIGTERM.\n";

typedef enum { SM_TASK_PATTERN = 0, SM_TASK_EVIDENCE = 1 } sm_task_kind_t;

typedef struct {
    char name[64];
    sm_task_kind_t kind;
    sm_eprop_params_t p;
    uint32_t nsteps, iterations, batch;
    double lr, w_min, w_max;
    double lr_decay;         /* Adam's rate is lr * lr_decay^floor(iteration / lr_decay_every) (1: constant) */
    uint32_t lr_decay_every;
    uint32_t update_every;   /* 0: one update per batch; N: an update every N steps of each trial and at its end */
    double in_rate_hz;     /* pattern: frozen Poisson inputs; evidence: cue rate */
    double noise_rate_hz;  /* evidence: background group */
    uint32_t cues, cue_ms, gap_ms, delay_ms, recall_ms;
    double amp_lo, amp_hi; /* pattern: amplitudes of the sines */
} sm_task_t;

static void sm__task_pattern(sm_task_t *t)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "pattern");
    t->kind = SM_TASK_PATTERN;
    sm_eprop_params_default(&t->p);
    t->p.n_in = 100;
    t->p.n_rec = 100;
    t->p.n_alif = 0;
    t->p.n_out = 1;
    t->p.loss = SM_EPROP_REGRESSION;
    t->p.c_reg = 50.0;
    t->p.f_target_hz = 10.0;
    t->p.w_in_scale = 0.5;
    t->p.w_rec_scale = 0.3;
    t->p.w_out_scale = 1.0;
    t->nsteps = 1000;
    t->iterations = 400;
    t->batch = 1;
    t->lr = 0.003;
    t->lr_decay = 1.0;
    t->lr_decay_every = 100;
    t->w_min = -INFINITY;
    t->w_max = INFINITY;
    t->in_rate_hz = 50.0;
    t->amp_lo = 0.5;
    t->amp_hi = 2.0;
}

static void sm__task_evidence(sm_task_t *t)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "evidence");
    t->kind = SM_TASK_EVIDENCE;
    sm_eprop_params_default(&t->p);
    t->p.n_in = 40;
    t->p.n_rec = 100;
    t->p.n_alif = 50;
    t->p.n_out = 2;
    t->p.tau_a = 2000.0;
    t->p.beta = 0.0174; /* Bellec et al.'s 1.7 (1 - rho) / (1 - alpha), in these units (docs/eprop.md) */
    t->p.loss = SM_EPROP_CLASSIFICATION;
    t->p.c_reg = 2.0;   /* their reg_f 1 on (rate - target)^2 */
    t->p.f_target_hz = 10.0;
    t->p.w_in_scale = 1.0;
    t->p.w_rec_scale = 1.0;
    t->p.w_out_scale = 1.0;
    t->cues = 7;
    t->cue_ms = 100;
    t->gap_ms = 50;
    t->delay_ms = 1050;
    t->recall_ms = 150;
    t->nsteps = t->cues * (t->cue_ms + t->gap_ms) + t->delay_ms + t->recall_ms;
    t->iterations = 500;
    t->batch = 32;
    t->lr = 0.005;
    t->lr_decay = 0.7;
    t->lr_decay_every = 100;
    t->w_min = -INFINITY;
    t->w_max = INFINITY;
    t->in_rate_hz = 40.0;
    t->noise_rate_hz = 10.0;
}

/* A task JSON file: {"task": "pattern"|"evidence", and any of the overrides below}; unknown keys are refused. */
static int sm__task_load(const char *path, sm_task_t *t, sm_errbuf_t *eb)
{
    json_error_t je;
    struct stat st;
    /* As the network loader says it: jansson's own message for these has no place ("-1:-1") or a misleading one. */
    if (stat(path, &st) != 0)
        return sm_errorf(eb, SM_EIO, "%s: cannot read: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return sm_errorf(eb, SM_EIO, "%s: cannot read: it is a directory", path);
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root && je.line < 1)
        return sm_errorf(eb, SM_EPARSE, "%s: %s", path, je.text);
    if (!root)
        return sm_errorf(eb, SM_EPARSE, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    int rc = 0;
    const char *base = NULL;
    json_t *jt = json_object_get(root, "task");
    if (!json_is_object(root) || !jt || !json_is_string(jt)) {
        rc = sm_errorf(eb, SM_EPARSE, "%s: task: needs \"task\": \"pattern\" or \"evidence\"", path);
        goto out;
    }
    base = json_string_value(jt);
    if (strcmp(base, "pattern") == 0)
        sm__task_pattern(t);
    else if (strcmp(base, "evidence") == 0)
        sm__task_evidence(t);
    else {
        rc = sm_errorf(eb, SM_ENOENT, "%s: task: unknown task \"%.60s\" (known: pattern, evidence)", path, base);
        goto out;
    }
    (void)sm_utf8_copy(t->name, sizeof t->name, path); /* a long path is cut between characters */
    struct {
        const char *key;
        double *d;
        uint32_t *u;
    } keys[] = {
        {"n_in", NULL, &t->p.n_in},           {"n_rec", NULL, &t->p.n_rec},
        {"n_alif", NULL, &t->p.n_alif},       {"n_ref", NULL, &t->p.n_ref},
        {"steps", NULL, &t->nsteps},          {"iterations", NULL, &t->iterations},
        {"batch", NULL, &t->batch},           {"tau_m_ms", &t->p.tau_m, NULL},
        {"tau_a_ms", &t->p.tau_a, NULL},      {"tau_out_ms", &t->p.tau_out, NULL},
        {"v_th_mV", &t->p.v_th, NULL},        {"beta_mV", &t->p.beta, NULL},
        {"gamma", &t->p.gamma, NULL},         {"c_reg", &t->p.c_reg, NULL},
        {"f_target_hz", &t->p.f_target_hz, NULL}, {"lr", &t->lr, NULL},
        {"w_min_mV", &t->w_min, NULL},        {"w_max_mV", &t->w_max, NULL},
        {"w_in_scale", &t->p.w_in_scale, NULL}, {"w_rec_scale", &t->p.w_rec_scale, NULL},
        {"w_out_scale", &t->p.w_out_scale, NULL}, {"input_rate_hz", &t->in_rate_hz, NULL},
        {"noise_rate_hz", &t->noise_rate_hz, NULL}, {"feedback", NULL, NULL},
        {"cues", NULL, &t->cues},             {"cue_ms", NULL, &t->cue_ms},
        {"gap_ms", NULL, &t->gap_ms},         {"recall_ms", NULL, &t->recall_ms},
        {"lr_decay", &t->lr_decay, NULL},     {"lr_decay_every", NULL, &t->lr_decay_every},
        {"update_every", NULL, &t->update_every},
    };
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        if (strcmp(k, "task") == 0)
            continue;
        size_t q = 0, nk = sizeof keys / sizeof keys[0];
        while (q < nk && strcmp(keys[q].key, k) != 0)
            q++;
        if (q == nk) {
            rc = sm_errorf(eb, SM_EPARSE, "%s: %.60s: unknown key (see docs/eprop.md)", path, k);
            goto out;
        }
        if (strcmp(k, "feedback") == 0) {
            const char *s = json_string_value(v);
            if (s && strcmp(s, "symmetric") == 0)
                t->p.feedback = SM_EPROP_FB_SYMMETRIC;
            else if (s && strcmp(s, "random") == 0)
                t->p.feedback = SM_EPROP_FB_RANDOM;
            else {
                rc = sm_errorf(eb, SM_EPARSE, "%s: feedback: must be \"symmetric\" or \"random\"", path);
                goto out;
            }
            continue;
        }
        if (!json_is_number(v)) {
            rc = sm_errorf(eb, SM_EPARSE, "%s: %s: must be a number", path, k);
            goto out;
        }
        double x = json_number_value(v);
        if (keys[q].d) {
            *keys[q].d = x;
        } else {
            if (!(x >= 0 && x <= 1e7) || x != floor(x)) {
                rc = sm_errorf(eb, SM_ERANGE, "%s: %s: must be a whole number from 0 to 1e7, got %g", path, k, x);
                goto out;
            }
            *keys[q].u = (uint32_t)x;
        }
    }
    if (t->kind == SM_TASK_EVIDENCE) {
        if (t->cues < 1 || t->cues > 31 || t->cue_ms < 1 || t->recall_ms < 1) {
            rc = sm_errorf(eb, SM_ERANGE, "%s: evidence needs 1..31 cues, cue_ms >= 1 and recall_ms >= 1", path);
            goto out;
        }
        uint32_t need = t->cues * (t->cue_ms + t->gap_ms) + t->recall_ms + 1;
        if (t->nsteps < need || t->p.n_in < 4 || t->p.n_out != 2) {
            rc = sm_errorf(eb, SM_ERANGE, "%s: evidence needs steps >= %u, n_in >= 4 and 2 readouts", path, need);
            goto out;
        }
        t->delay_ms = t->nsteps - t->cues * (t->cue_ms + t->gap_ms) - t->recall_ms;
    }
    /* The rates become the Poisson sources of the saved network: refused here, under the task file's keys. */
    if (!(t->in_rate_hz >= 0) || !(t->noise_rate_hz >= 0)) {
        rc = sm_errorf(eb, SM_ERANGE, "%s: %s: must be zero or positive, got %g", path,
                       t->in_rate_hz >= 0 ? "noise_rate_hz" : "input_rate_hz",
                       t->in_rate_hz >= 0 ? t->noise_rate_hz : t->in_rate_hz);
        goto out;
    }
    if (!(t->w_min <= t->w_max)) {
        rc = sm_errorf(eb, SM_ERANGE, "%s: w_min_mV, w_max_mV: w_min_mV (%g) must not exceed w_max_mV (%g)", path,
                       t->w_min, t->w_max);
        goto out;
    }
    if (!(t->lr > 0) || !(t->lr_decay > 0 && t->lr_decay <= 1) || t->lr_decay_every < 1) {
        rc = sm_errorf(eb, SM_ERANGE, "%s: lr must be positive, lr_decay in (0, 1] and lr_decay_every >= 1", path);
        goto out;
    }
    if (t->nsteps < 1 || t->iterations < 1 || t->batch < 1) {
        rc = sm_errorf(eb, SM_ERANGE, "%s: steps, iterations and batch must be at least 1", path);
        goto out;
    }
    if (t->batch > SM__MAX_BATCH) { /* the same bound as --batch */
        rc = sm_errorf(eb, SM_ERANGE, "%s: batch: must be between 1 and %d, got %u", path, SM__MAX_BATCH, t->batch);
        goto out;
    }
    if ((rc = sm_eprop_params_check(&t->p, eb)) != 0) {
        char m[SM_ERRBUF_SIZE];
        snprintf(m, sizeof m, "%s", eb->msg);
        rc = sm_errorf(eb, rc, "%s: %s", path, m);
    }
out:
    json_decref(root);
    return rc;
}

/* Trial data of one batch. */
typedef struct {
    uint8_t *x, *mask;
    double *target;
    sm_eprop_trial_t *tr;
    uint32_t n;
} sm__batch_t;

static int sm__batch_alloc(sm__batch_t *b, const sm_task_t *t, uint32_t n)
{
    size_t T = t->nsteps;
    b->n = n;
    b->x = calloc((size_t)n * T * t->p.n_in, 1);
    b->mask = calloc((size_t)n * T, 1);
    b->target = calloc((size_t)n * T * t->p.n_out, sizeof(double));
    b->tr = calloc(n, sizeof *b->tr);
    return b->x && b->mask && b->target && b->tr ? 0 : SM_ENOMEM;
}

static void sm__batch_free(sm__batch_t *b)
{
    free(b->x);
    free(b->mask);
    free(b->target);
    free(b->tr);
}

/* Fills trial b of the batch with trial number id: pattern trials are all the same (frozen inputs, trial 0);
 * evidence trials are drawn from (seed, SM_STREAM_EPROP_TASK, id). */
static void sm__make_trial(const sm_task_t *t, uint64_t seed, uint32_t id, sm__batch_t *bt, uint32_t b)
{
    uint32_t T = t->nsteps, ni = t->p.n_in, no = t->p.n_out;
    uint8_t *x = bt->x + (size_t)b * T * ni, *mask = bt->mask + (size_t)b * T;
    double *y = bt->target + (size_t)b * T * no, dt = t->p.dt;
    uint32_t o[4];
    if (t->kind == SM_TASK_PATTERN) {
        double ps = t->in_rate_hz * dt * 1e-3;
        for (uint32_t i = 0; i < ni; i++)
            for (uint32_t s = 0; s < T; s += 2) {
                sm_philox(seed, SM_STREAM_EPROP_TASK, 0, i, s / 2, o);
                x[(size_t)s * ni + i] = sm_u01(o[0], o[1]) < ps;
                if (s + 1 < T)
                    x[(size_t)(s + 1) * ni + i] = sm_u01(o[2], o[3]) < ps;
            }
        static const double periods[4] = {1000.0, 500.0, 333.0, 200.0};
        double amp[4], ph[4];
        for (int k = 0; k < 4; k++) {
            sm_philox(seed, SM_STREAM_EPROP_TASK, 0xFFFFFFFFu, (uint32_t)k, 0, o);
            amp[k] = t->amp_lo + (t->amp_hi - t->amp_lo) * sm_u01(o[0], o[1]);
            ph[k] = 6.283185307179586 * sm_u01(o[2], o[3]);
        }
        for (uint32_t s = 0; s < T; s++) {
            double v = 0;
            for (int k = 0; k < 4; k++)
                v += amp[k] * sin(6.283185307179586 * (double)s * dt / periods[k] + ph[k]);
            for (uint32_t k = 0; k < no; k++)
                y[(size_t)s * no + k] = v;
            mask[s] = 1;
        }
    } else {
        /* Inputs in 4 groups: left cues, right cues, recall cue, background noise. */
        uint32_t g = ni / 4, left = 0;
        sm_philox(seed, SM_STREAM_EPROP_TASK, id, 0xFFFFFFFFu, 0, o);
        uint32_t sides = o[0];
        for (uint32_t c = 0; c < t->cues; c++)
            left += (sides >> c) & 1u;
        uint32_t label = 2 * left > t->cues ? 0u : 1u;
        uint32_t period = t->cue_ms + t->gap_ms, cue_end = t->cues * period, rec0 = T - t->recall_ms;
        double pc = t->in_rate_hz * dt * 1e-3, pn = t->noise_rate_hz * dt * 1e-3;
        for (uint32_t s = 0; s < T; s++) {
            double ms = (double)s * dt;
            uint32_t ci = (uint32_t)(ms / period);
            int cue_on = ms < cue_end && fmod(ms, period) < t->cue_ms;
            int cue_left = cue_on && ((sides >> ci) & 1u);
            int recall = s >= rec0;
            for (uint32_t i = 0; i < ni; i++) {
                uint32_t grp = i / g < 3 ? i / g : 3;
                double pr = grp == 0 ? (cue_on && cue_left ? pc : 0.0)
                            : grp == 1 ? (cue_on && !cue_left ? pc : 0.0)
                            : grp == 2 ? (recall ? pc : 0.0)
                                       : pn;
                /* The batch's buffers are reused from trial to trial: every entry is written, silent ones too. */
                if (pr <= 0.0) {
                    x[(size_t)s * ni + i] = 0;
                    continue;
                }
                sm_philox(seed, SM_STREAM_EPROP_TASK, id, i, s, o);
                x[(size_t)s * ni + i] = sm_u01(o[0], o[1]) < pr;
            }
            mask[s] = (uint8_t)recall;
            for (uint32_t k = 0; k < no; k++)
                y[(size_t)s * no + k] = k == label ? 1.0 : 0.0;
        }
    }
    bt->tr[b] = (sm_eprop_trial_t){.nsteps = T, .x = x, .target = y, .mask = mask};
}

/* ---- outputs ---- */

static char *sm__join(const char *dir, const char *name, const char *ext)
{
    size_t n = strlen(dir) + strlen(name) + strlen(ext) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s%s", dir, name, ext);
    return s;
}

/* What train --out writes. */
static const char *const sm__out_files[4] = {"learning_curve.csv", "learning_curve.svg", "trained_network.json",
                                             "traffic.json"};

/* The first of the n outputs in dir whose final name a directory takes (-1: none): it could not be renamed into
 * place, so it is refused before anything is written. */
static int sm__blocked(const char *dir, const char *const *names, int n)
{
    for (int k = 0; k < n; k++) {
        char *fin = sm__join(dir, names[k], "");
        struct stat st;
        int isdir = fin && stat(fin, &st) == 0 && S_ISDIR(st.st_mode);
        free(fin);
        if (isdir)
            return k;
    }
    return -1;
}

/* Writes the n outputs all or none: each text to DIR/NAME.part, and only when all are written renames them to
 * DIR/NAME; on failure the .part files are removed. */
static int sm__write_all(const char *dir, const char *const *names, char *const *texts, const size_t *lens, int n,
                         sm_errbuf_t *eb)
{
    int rc = 0, k, written = 0, blocked = sm__blocked(dir, names, n);
    if (blocked >= 0)
        return sm_errorf(eb, SM_EIO, "--out '%s': cannot write %s: a directory has that name", dir, names[blocked]);
    for (k = 0; k < n && rc == 0; k++) {
        char *part = sm__join(dir, names[k], ".part");
        FILE *f = part ? fopen(part, "wb") : NULL;
        if (!f) {
            rc = part ? sm_errorf(eb, SM_EIO, "--out '%s': cannot write %s: %s", dir, names[k], strerror(errno))
                      : SM_ENOMEM;
        } else {
            int bad = fwrite(texts[k], 1, lens[k], f) != lens[k];
            bad |= fclose(f) != 0;
            if (bad) {
                rc = sm_errorf(eb, SM_EIO, "--out '%s': cannot write %s: %s", dir, names[k], strerror(errno));
                remove(part);
            } else
                written++;
        }
        free(part);
    }
    for (k = 0; k < written; k++) {
        char *part = sm__join(dir, names[k], ".part"), *fin = sm__join(dir, names[k], "");
        if (part && rc != 0)
            remove(part);
        else if (!part || !fin)
            rc = SM_ENOMEM;
        else if (rename(part, fin) != 0) {
            rc = sm_errorf(eb, SM_EIO, "--out '%s': cannot write %s: %s", dir, names[k], strerror(errno));
            remove(part);
        }
        free(part);
        free(fin);
    }
    return rc;
}

typedef struct {
    double *loss, *acc, *rate, *wall;
    uint32_t n;
} sm__curve_t;

static char *sm__curve_csv(const sm__curve_t *c, int cls, size_t *len)
{
    size_t cap = 64 + (size_t)c->n * 96;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t o = (size_t)snprintf(s, cap, "iteration,loss,%srate_hz,wall_s\n", cls ? "accuracy," : "");
    for (uint32_t i = 0; i < c->n; i++) {
        if (cls)
            o += (size_t)snprintf(s + o, cap - o, "%u,%.9g,%.6g,%.6g,%.6g\n", i + 1, c->loss[i], c->acc[i],
                                  c->rate[i], c->wall[i]);
        else
            o += (size_t)snprintf(s + o, cap - o, "%u,%.9g,%.6g,%.6g\n", i + 1, c->loss[i], c->rate[i], c->wall[i]);
    }
    *len = o;
    return s;
}

/* The loss (and accuracy, on its own axis 0..1) against the iteration, as a self-contained SVG. */
static char *sm__curve_svg(const sm__curve_t *c, int cls, const char *title, size_t *len)
{
    size_t cap = 4096 + (size_t)c->n * 64;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    const double W = 720, H = 400, x0 = 70, y0 = 30, pw = 580, ph = 310;
    double lmax = 0;
    for (uint32_t i = 0; i < c->n; i++)
        lmax = fmax(lmax, c->loss[i]);
    if (!(lmax > 0))
        lmax = 1;
    size_t o = (size_t)snprintf(
        s, cap,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" "
        "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
        "<text x=\"%.0f\" y=\"18\" font-size=\"14\">spikemesh train: %s</text>\n"
        "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"black\"/>\n"
        "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">%.3g</text><text x=\"%.0f\" y=\"%.0f\" "
        "text-anchor=\"end\">0</text>\n<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">iteration (1 .. %u)</text>\n"
        "<text x=\"15\" y=\"%.0f\" fill=\"#1f77b4\" transform=\"rotate(-90 15 %.0f)\">loss</text>\n",
        W, H, x0, title, x0, y0, pw, ph, x0 - 4, y0 + 10, lmax, x0 - 4, y0 + ph, x0 + pw / 2, y0 + ph + 30, c->n,
        y0 + ph / 2, y0 + ph / 2);
    for (int series = 0; series < (cls ? 2 : 1); series++) {
        const double *v = series ? c->acc : c->loss;
        double top = series ? 1.0 : lmax;
        o += (size_t)snprintf(s + o, cap - o, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"",
                              series ? "#d62728" : "#1f77b4");
        for (uint32_t i = 0; i < c->n; i++) {
            double px = x0 + (c->n > 1 ? pw * i / (c->n - 1) : pw / 2), py = y0 + ph - ph * fmin(v[i] / top, 1.0);
            o += (size_t)snprintf(s + o, cap - o, "%.1f,%.1f ", px, py);
        }
        o += (size_t)snprintf(s + o, cap - o, "\"/>\n");
    }
    if (cls)
        o += (size_t)snprintf(s + o, cap - o,
                              "<text x=\"%.0f\" y=\"%.0f\">1</text><text x=\"%.0f\" y=\"%.0f\" fill=\"#d62728\" "
                              "transform=\"rotate(90 %.0f %.0f)\">accuracy (fresh trials of each batch)</text>\n",
                              x0 + pw + 4, y0 + 10, x0 + pw + 30, y0 + ph / 2 - 100, x0 + pw + 30, y0 + ph / 2 - 100);
    o += (size_t)snprintf(s + o, cap - o, "</svg>\n");
    *len = o;
    return s;
}

/* Weight of a spikemesh list synapse (mV into ge) that moves v by w in one step, as e-prop's delta synapse does:
 * with tau_e much shorter than dt, ge is spent within the step and adds ce * weight to v. */
static json_t *sm__proj(const char *pre, const char *post, uint32_t npre, uint32_t npost, const double *w,
                        uint64_t row_stride, uint64_t pre_off, double ce, int skip_diag)
{
    json_t *pairs = json_array(), *ws = json_array();
    for (uint32_t j = 0; j < npost; j++)
        for (uint32_t i = 0; i < npre; i++) {
            if (skip_diag && i == j)
                continue;
            double x = w[(uint64_t)j * row_stride + pre_off + i];
            json_array_append_new(pairs, json_pack("[i,i]", (json_int_t)i, (json_int_t)j));
            json_array_append_new(ws, json_real(x / ce));
        }
    return json_pack("{s:s,s:s,s:s,s:f,s:{s:s,s:o,s:o}}", "pre", pre, "post", post, "receptor", "excitatory",
                     "delay_ms", 1.0, "connect", "rule", "list", "pairs", pairs, "weights_mV", ws);
}

/* The trained network in the network JSON format (docs/network-format.md): inputs as Poisson sources, the LIF and
 * ALIF neurons as lif populations (adaptation is not part of that format), readouts as lif populations that never
 * reach their threshold; list projections with per-synapse weights_mV. */
/* The factors of the export: a recurrent weight w is saved as w / ce_rec mV, a readout weight as w / ce_out mV, a
 * readout bias b as i_bias_mV b / (1 - kappa). */
static void sm__export_consts(const sm_eprop_params_t *p, double *ce_rec, double *ce_out, double *kappa)
{
    sm_lif_params_t lp = {.tau_m = p->tau_m, .tau_e = 0.05 * p->dt, .tau_i = 10.0, .v_thresh = p->v_th,
                          .v_reset = 0, .v_rest = 0, .t_ref = p->n_ref * p->dt};
    sm_lif_consts_t cr, co;
    sm_lif_consts(&lp, p->dt, &cr, NULL);
    sm_lif_params_t lo = lp;
    lo.tau_m = p->tau_out;
    sm_lif_consts(&lo, p->dt, &co, NULL);
    *ce_rec = cr.ce;
    *ce_out = co.ce;
    *kappa = exp(-p->dt / p->tau_out);
}

static char *sm__net_json(const sm_eprop_net_t *net, const sm_task_t *t)
{
    const sm_eprop_params_t *p = &net->p;
    const double tau_e = 0.05 * p->dt;
    sm_lif_consts_t cr, co;
    double kappa;
    sm__export_consts(p, &cr.ce, &co.ce, &kappa);
    json_t *pops = json_array(), *projs = json_array();
    double rate = t->kind == SM_TASK_PATTERN ? t->in_rate_hz : t->noise_rate_hz;
    json_array_append_new(pops, json_pack("{s:s,s:i,s:s,s:{s:f}}", "name", "input", "size", (json_int_t)p->n_in,
                                          "model", "poisson", "params", "rate_hz", rate));
    uint32_t nl = p->n_rec - p->n_alif;
    const char *names[2] = {"lif", "alif"};
    uint32_t lo_[2] = {0, nl}, cnt[2] = {nl, p->n_alif};
    for (int g = 0; g < 2; g++)
        if (cnt[g])
            json_array_append_new(
                pops, json_pack("{s:s,s:i,s:s,s:{s:f,s:f,s:f,s:f,s:f,s:f,s:f},s:f}", "name", names[g], "size",
                                (json_int_t)cnt[g], "model", "lif", "params", "tau_m_ms", p->tau_m, "tau_e_ms", tau_e,
                                "v_thresh_mV", p->v_th, "v_reset_mV", 0.0, "v_rest_mV", 0.0, "t_ref_ms",
                                p->n_ref * p->dt, "tau_i_ms", 10.0, "v_init_mV", 0.0));
    /* One readout population per readout, so that each has its own bias (i_bias = b / (1 - kappa)). */
    for (uint32_t k = 0; k < p->n_out; k++) {
        char nm[32];
        snprintf(nm, sizeof nm, "readout%u", k);
        json_array_append_new(pops, json_pack("{s:s,s:i,s:s,s:{s:f,s:f,s:f,s:f,s:f,s:f,s:f},s:f}", "name", nm,
                                              "size", 1, "model", "lif", "params", "tau_m_ms", p->tau_out,
                                              "tau_e_ms", tau_e, "v_thresh_mV", 1e30, "v_reset_mV", 0.0,
                                              "v_rest_mV", 0.0, "i_bias_mV", net->b_out[k] / (1.0 - kappa),
                                              "t_ref_ms", 0.0, "v_init_mV", 0.0));
    }
    uint64_t ni = p->n_in, nr = p->n_rec;
    for (int g = 0; g < 2; g++) {
        if (!cnt[g])
            continue;
        const double *wi = net->w_in + lo_[g] * ni;
        json_array_append_new(projs, sm__proj("input", names[g], p->n_in, cnt[g], wi, ni, 0, cr.ce, 0));
        for (int h = 0; h < 2; h++) {
            if (!cnt[h])
                continue;
            /* rows lo_[g].., columns lo_[h]..: autapses only within one group. */
            json_t *pairs = json_array(), *ws = json_array();
            for (uint32_t j = 0; j < cnt[g]; j++)
                for (uint32_t i = 0; i < cnt[h]; i++) {
                    uint64_t jj = lo_[g] + j, ii = lo_[h] + i;
                    if (jj == ii)
                        continue;
                    json_array_append_new(pairs, json_pack("[i,i]", (json_int_t)i, (json_int_t)j));
                    json_array_append_new(ws, json_real(net->w_rec[jj * nr + ii] / cr.ce));
                }
            json_array_append_new(projs, json_pack("{s:s,s:s,s:s,s:f,s:{s:s,s:o,s:o}}", "pre", names[h], "post",
                                                   names[g], "receptor", "excitatory", "delay_ms", p->dt, "connect",
                                                   "rule", "list", "pairs", pairs, "weights_mV", ws));
        }
    }
    for (uint32_t k = 0; k < p->n_out; k++) {
        char nm[32];
        snprintf(nm, sizeof nm, "readout%u", k);
        for (int h = 0; h < 2; h++)
            if (cnt[h])
                json_array_append_new(projs, sm__proj(names[h], nm, cnt[h], 1, net->w_out + (uint64_t)k * nr + lo_[h],
                                                      nr, 0, co.ce, 0));
    }
    json_t *root = json_pack("{s:s,s:f,s:f,s:o,s:o}", "name", t->kind == SM_TASK_PATTERN ? "trained_pattern"
                                                                                         : "trained_evidence",
                             "dt_ms", p->dt, "duration_ms", p->dt * t->nsteps, "populations", pops, "projections",
                             projs);
    char *txt = root ? json_dumps(root, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(root);
    return txt;
}

/* 0 when every weight and bias of net can be saved as the network JSON that `spikemesh run` loads (finite, and a
 * weight within a 32-bit float once in mV); else 1, with what is wrong in why: training diverged, or the initial
 * weights are out of range. */
static int sm__export_bad(const sm_eprop_net_t *net, char *why, size_t cap)
{
    const sm_eprop_params_t *p = &net->p;
    double ce[3], kappa;
    sm__export_consts(p, &ce[0], &ce[2], &kappa);
    ce[1] = ce[0];
    const double *w[3] = {net->w_in, net->w_rec, net->w_out};
    const uint64_t rows[3] = {p->n_rec, p->n_rec, p->n_out}, cols[3] = {p->n_in, p->n_rec, p->n_rec};
    static const char *const kind[3] = {"an input", "a recurrent", "a readout"};
    for (int k = 0; k < 3; k++)
        for (uint64_t j = 0; j < rows[k]; j++)
            for (uint64_t i = 0; i < cols[k]; i++) {
                double x = w[k][j * cols[k] + i], mv = x / ce[k];
                if (k == 1 && i == j)
                    continue;
                if (!isfinite(x) || !isfinite(mv)) {
                    snprintf(why, cap, "%s weight is %g (%g mV in the network)", kind[k], x, mv);
                    return 1;
                }
                if (fabs(mv) > 3.0e38) {
                    snprintf(why, cap, "%s weight is %g mV, more than a 32-bit float holds", kind[k], mv);
                    return 1;
                }
            }
    for (uint32_t k = 0; k < p->n_out; k++)
        if (!isfinite(net->b_out[k] / (1.0 - kappa))) {
            snprintf(why, cap, "the bias of readout %u is %g (i_bias_mV %g)", k, net->b_out[k],
                     net->b_out[k] / (1.0 - kappa));
            return 1;
        }
    return 0;
}

/* How the messages name a larger mesh of the chip: --chip PRESET:WxH (PRESET*XxY for a board) for a preset, the
 * chip file's "mesh" ("board") member otherwise, as `spikemesh run` does. W x H are tiles; a board's in chips. */
static void sm__mesh_hint(const sm_chip_t *chip, int preset, uint64_t w, uint64_t h, char *out, size_t cap)
{
    char base[SM_NAME_MAX];
    snprintf(base, sizeof base, "%s", chip->name);
    base[strcspn(base, ":*")] = '\0';
    int board = (uint64_t)chip->chips_x * chip->chips_y > 1;
    if (board && preset)
        snprintf(out, cap, "--chip %s*%llux%llu", base, (unsigned long long)w, (unsigned long long)h);
    else if (board)
        snprintf(out, cap, "\"board\": {\"chips_x\": %llu, \"chips_y\": %llu} in the chip file",
                 (unsigned long long)w, (unsigned long long)h);
    else if (preset)
        snprintf(out, cap, "--chip %s:%llux%llu", base, (unsigned long long)w, (unsigned long long)h);
    else
        snprintf(out, cap, "\"mesh\": {\"width\": %llu, \"height\": %llu} in the chip file", (unsigned long long)w,
                 (unsigned long long)h);
}

/* The deployment names a larger mesh for a chip file when the chip is not exactly a preset, and the check below
 * charges every synapse its traces: for a preset, say it as --chip PRESET:WxH (PRESET*XxY) in msg instead. */
static void sm__preset_hint(const sm_chip_t *chip, int preset, char *msg, size_t cap)
{
    static const char *const pat[2] = {"\"mesh\": {\"width\": %llu, \"height\": %llu} in the chip file%n",
                                       "\"board\": {\"chips_x\": %llu, \"chips_y\": %llu} in the chip file%n"};
    static const char *const lead[2] = {"\"mesh\": {", "\"board\": {"};
    if (!preset)
        return;
    for (int k = 0; k < 2; k++) {
        char *at = strstr(msg, lead[k]);
        unsigned long long w, h;
        int used = 0;
        if (!at || sscanf(at, pat[k], &w, &h, &used) != 2 || used == 0)
            continue;
        char hint[96], rest[SM_ERRBUF_SIZE];
        sm__mesh_hint(chip, preset, w, h, hint, sizeof hint);
        snprintf(rest, sizeof rest, "%s", at + used);
        snprintf(at, cap - (size_t)(at - msg), "%s%s", hint, rest);
    }
}

/* Before the weights are made: refuses at once, from the sizes alone, a network that no deployment on the chip
 * can hold with its traces: a recurrent neuron's fan-in or its synapses and traces over one core's, or all the
 * synapses and traces over the whole chip's synapse memory. (A network of n_rec 5000 took a minute and gigabytes
 * to export and partition before.) The exact check is sm__check_fit's. */
static int sm__fit_bound(const sm_eprop_params_t *p, const char *netname, const sm_chip_t *chip, int preset,
                         sm_errbuf_t *eb)
{
    const char *name = p->n_alif ? "alif" : "lif";
    uint64_t word = p->trace_bits ? p->trace_bits : 32u, base = chip->synapse_bytes;
    uint64_t fan_in = (uint64_t)p->n_in + p->n_rec - 1u, nsyn = sm_eprop_nsyn(p);
    if (chip->max_fan_in && fan_in > chip->max_fan_in)
        return sm_errorf(eb, SM_ENOFIT,
                         "network '%s' does not fit chip '%s': neuron 0 of population '%s' has %llu distinct "
                         "presynaptic neurons, more than a core's fan-in of %u; no mesh size fits it",
                         netname, chip->name, name, (unsigned long long)fan_in, chip->max_fan_in);
    /* The neuron with the most traces (an ALIF one if any) alone on a core, with its presynaptic traces. */
    uint64_t one_tr = sm_eprop_trace_bytes(p, p->n_rec - 1u);
    uint64_t one = fan_in * base + one_tr + (fan_in * word + 7u) / 8u;
    if (one > chip->synapse_memory)
        return sm_errorf(eb, SM_ENOFIT,
                         "network '%s' does not fit chip '%s': neuron 0 of population '%s' receives %llu synapses, "
                         "%llu B of synapse memory with its e-prop traces (%llu B of weights, %llu B of traces), "
                         "more than a core's %llu B; no mesh size fits it (fewer trace bits, --trace-bits, or a "
                         "chip with more synapse memory)", netname, chip->name, name,
                         (unsigned long long)fan_in, (unsigned long long)one, (unsigned long long)(fan_in * base),
                         (unsigned long long)(one - fan_in * base), (unsigned long long)chip->synapse_memory);
    uint64_t traces = 0;
    for (uint32_t j = 0; j < p->n_rec; j++)
        traces += sm_eprop_trace_bytes(p, j);
    uint64_t need = nsyn * base + traces, cores = (uint64_t)chip->width * chip->height * chip->cores_per_tile;
    if (need <= cores * chip->synapse_memory)
        return 0;
    /* The squarest mesh (of whole chips, on a board) with that much synapse memory, never smaller than the chip. */
    uint64_t tiles = ((need + chip->synapse_memory - 1) / chip->synapse_memory + chip->cores_per_tile - 1) /
                     chip->cores_per_tile;
    int board = (uint64_t)chip->chips_x * chip->chips_y > 1;
    uint64_t cw = board ? chip->width / chip->chips_x : 1, ch = board ? chip->height / chip->chips_y : 1;
    uint64_t units = (tiles + cw * ch - 1) / (cw * ch);
    uint64_t bx = (uint64_t)ceil(sqrt((double)units * (double)ch / (double)cw)), by;
    if (bx < chip->width / cw)
        bx = chip->width / cw;
    by = (units + bx - 1) / bx;
    if (by < chip->height / ch)
        by = chip->height / ch;
    char hint[160];
    if (bx * cw > 4096 || by * ch > 4096 || bx * cw * by * ch > (1u << 22))
        snprintf(hint, sizeof hint, "no mesh size fits: it would take at least %llux%llu tiles",
                 (unsigned long long)(bx * cw), (unsigned long long)(by * ch));
    else {
        char m[96];
        sm__mesh_hint(chip, preset, board ? bx : bx * cw, board ? by : by * ch, m, sizeof m);
        snprintf(hint, sizeof hint, "%s has that much synapse memory", m);
    }
    return sm_errorf(eb, SM_ENOFIT,
                     "network '%s' does not fit chip '%s': its %llu synapses need at least %llu B of synapse memory "
                     "with their e-prop traces (%llu B of weights, %llu B of traces), more than the %llu B of its "
                     "%llu cores of %llu B; %s (or fewer trace bits, --trace-bits)", netname, chip->name,
                     (unsigned long long)nsyn, (unsigned long long)need, (unsigned long long)(nsyn * base),
                     (unsigned long long)traces, (unsigned long long)(cores * chip->synapse_memory),
                     (unsigned long long)cores, (unsigned long long)chip->synapse_memory, hint);
}

/* Traces live beside the weights: deploys the exported network on the chip and checks every core's synapse memory
 * holds its synapses plus the traces of its recurrent neurons and its presynaptic traces. */
/* On success the network and its deployment stay in *netp and *depp (the caller frees both, the deployment
 * first): train counts its traffic on that mesh. preset: the chip is a preset (--chip loihi, loihi:WxH), which the
 * messages name so. */
static int sm__check_fit(const char *txt, const sm_eprop_params_t *p, const sm_chip_t *chip_in, int preset,
                         uint64_t seed, uint64_t *trace_total, sm_net_t *netp, sm_deploy_t *depp, sm_errbuf_t *eb)
{
    sm_chip_t chip = *chip_in;
    int rc;
    *trace_total = 0;
    memset(netp, 0, sizeof *netp);
    memset(depp, 0, sizeof *depp);
    if ((rc = sm_net_parse(txt, strlen(txt), "trained_network.json", netp, eb)) != 0)
        return rc;
#define net (*netp)
#define dep (*depp)
    /* Partition with every synapse charged its weight and the traces of an ALIF synapse (the most a synapse
     * needs), then check each core exactly. */
    uint32_t word = p->trace_bits ? p->trace_bits : 32u, base = chip.synapse_bytes;
    uint32_t per = (uint32_t)(((p->n_alif ? 3u : 2u) * word + 7u) / 8u);
    chip.synapse_bytes = base + per;
    char why[SM_ERRBUF_SIZE] = "";
    if ((rc = sm_deploy_build(&net, &chip, seed, &dep, eb)) != 0) {
        /* It does not fit with its traces: name the first core of the placement without traces that overflows. */
        sm__preset_hint(chip_in, preset, eb->msg, sizeof eb->msg);
        snprintf(why, sizeof why, "with e-prop traces (%u B per synapse beside its %u B weight): %.900s", per, base,
                 eb->msg);
        chip.synapse_bytes = base;
        if (sm_deploy_build(&net, &chip, seed, &dep, eb) != 0) {
            sm_net_free(&net);
            return sm_errorf(eb, rc, "%s", why);
        }
        rc = 0;
    }
    uint32_t first_rec = p->n_in;
    for (uint32_t c = 0; c < dep.ncores && rc == 0; c++) {
        const sm_core_t *co = &dep.cores[c];
        uint64_t weights = co->synapses * base, bytes = 0;
        for (uint32_t id = co->first; id < co->first + co->count; id++)
            if (id >= first_rec && id < first_rec + p->n_rec)
                bytes += sm_eprop_trace_bytes(p, id - first_rec);
        if (bytes)
            bytes += ((uint64_t)co->fan_in * word + 7u) / 8u; /* zbar per presynaptic neuron */
        *trace_total += bytes;
        if (weights + bytes > chip.synapse_memory)
            rc = sm_errorf(eb, SM_ENOFIT,
                           "core %u (tile %u, slot %u) needs %llu B of synapse memory for %llu B of weights and "
                           "%llu B of e-prop traces: %llu B over its %llu B (fewer trace bits, --trace-bits, or a "
                           "chip with more synapse memory)",
                           c, co->tile, co->slot, (unsigned long long)(weights + bytes),
                           (unsigned long long)weights, (unsigned long long)bytes,
                           (unsigned long long)(weights + bytes - chip.synapse_memory),
                           (unsigned long long)chip.synapse_memory);
    }
    if (rc == 0 && why[0])
        rc = sm_errorf(eb, SM_ENOFIT, "%s", why);
    else if (rc != 0 && why[0]) {
        char m[SM_ERRBUF_SIZE];
        snprintf(m, sizeof m, "%s", eb->msg);
        sm_errorf(eb, rc, "%.500s; %.500s", m, why);
    }
    if (rc != 0) {
        sm_deploy_free(&dep);
        sm_net_free(&net);
    }
    return rc;
#undef net
#undef dep
}

/* ---- traffic and energy on the chip ---- */

/* What training sent over the deployment's mesh and what its operations cost (docs/eprop.md). */
typedef struct {
    uint64_t spike_packets, learning_packets; /* multicast packets injected */
    uint64_t spike_hops, learning_hops;       /* link traversals */
    uint64_t spike_deliveries, learning_deliveries;
    double spike_hop_pj, learning_hop_pj;     /* link traversals charged by direction (hop_ew/ns/chip_pj) */
    uint32_t busy_tile;
    int busy_dir;                             /* -1: no packet crossed a link */
    uint64_t busy_packets;
    sm_core_counters_t *cc;                   /* [ncores] */
} sm__traffic_t;

/* Link traversals, deliveries and hop energy of one packet along a recorded tree. */
static void sm__tree_cost(const sm_mesh_t *m, const sm_costs_t *c, const uint64_t *tree, uint32_t n, uint64_t *hops,
                          uint64_t *deliv, double *pj)
{
    *hops = 0;
    *deliv = 0;
    *pj = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t t = (uint32_t)(tree[i] >> 32), r = (uint32_t)tree[i];
        for (int d = 0; d < SM_NDIRS; d++)
            if (r & SM_ROUTE_LINK(d)) {
                *hops += 1;
                *pj += sm_mesh_link_is_inter(m, t, d) ? c->hop_chip_pj
                       : d == SM_DIR_E || d == SM_DIR_W ? c->hop_ew_pj
                                                         : c->hop_ns_pj;
            }
        *deliv += (uint64_t)__builtin_popcount(r >> 4);
    }
}

/* Counts on dep's mesh (cleared first) the spikes of every input and recurrent neuron (nspk[n_in + n_rec], global
 * ids of the exported network) along its piece's tree, and learn_per_readout learning-signal packets from each
 * readout's core to every core holding recurrent neurons; fills the per-core counters (neuron_updates: recurrent
 * and readout updates over `steps` steps). */
static int sm__count_traffic(sm_deploy_t *dep, const sm_eprop_params_t *p, const uint64_t *nspk,
                             uint64_t learn_per_readout, uint64_t steps, sm__traffic_t *tf, sm_errbuf_t *eb)
{
    sm_mesh_t *m = &dep->mesh;
    const sm_costs_t *cost = &dep->chip.costs;
    uint32_t nsrc = p->n_in + p->n_rec, tiles = sm_mesh_tiles(m), cpt = m->cores_per_tile;
    int rc = 0;
    memset(tf, 0, sizeof *tf);
    tf->busy_dir = -1;
    tf->cc = calloc(dep->ncores ? dep->ncores : 1u, sizeof *tf->cc);
    uint64_t *tree = malloc((size_t)tiles * sizeof *tree);
    uint32_t *dst = malloc(((size_t)dep->ncores + 1) * sizeof *dst);
    sm_mesh_t lm = {0};
    if (!tf->cc || !tree || !dst) {
        rc = SM_ENOMEM;
        goto out;
    }
    sm_mesh_clear_counters(m);
    for (uint32_t q = 0; q < dep->npieces; q++) {
        const sm_piece_t *pc = &dep->pieces[q];
        uint64_t c = 0;
        for (uint32_t id = pc->first; id < pc->first + pc->count; id++)
            if (id < nsrc)
                c += nspk[id];
            else if (id < nsrc + p->n_out)
                tf->cc[pc->core].neuron_updates += steps;
        if (pc->first >= p->n_in && pc->first < nsrc)
            tf->cc[pc->core].neuron_updates += steps * pc->count;
        tf->cc[pc->core].spikes_sent += c;
        if (c == 0 || pc->ndest == 0)
            continue;
        uint32_t n = (uint32_t)(dep->tree_off[q + 1] - dep->tree_off[q]);
        uint64_t h, dl;
        double pj;
        sm__tree_cost(m, cost, dep->trees + dep->tree_off[q], n, &h, &dl, &pj);
        tf->spike_packets += c;
        tf->spike_hops += c * h;
        tf->spike_deliveries += c * dl;
        tf->spike_hop_pj += (double)c * pj;
        sm_mesh_count_tree(m, dep->trees + dep->tree_off[q], n, c);
    }
    for (uint32_t i = 0; i < nsrc && i < dep->n; i++)
        if (nspk[i])
            for (uint64_t k = dep->row[i]; k < dep->row[i + 1]; k++)
                tf->cc[dep->pieces[dep->piece_of[SM_SYN_POST(dep->syn[k].tgt)]].core].synaptic_ops += nspk[i];
    /* Learning signals: each readout's packets form one multicast tree to the recurrent cores, built on a scratch
     * mesh of the same shape (the deployment's tables stay as they are). */
    uint32_t nd = 0;
    for (uint32_t c = 0; c < dep->ncores; c++) {
        const sm_core_t *co = &dep->cores[c];
        if (co->first < nsrc && co->first + co->count > p->n_in)
            dst[nd++] = co->tile * cpt + co->slot;
    }
    if (learn_per_readout > 0 && nd > 0) {
        if ((rc = sm_mesh_init(&lm, m->width, m->height, cpt, p->n_out + 1u)) != 0)
            goto out;
        lm.chip_w = m->chip_w;
        lm.chip_h = m->chip_h;
        for (uint32_t k = 0; k < p->n_out; k++) {
            uint32_t id = nsrc + k;
            if (id >= dep->n) {
                rc = sm_errorf(eb, SM_EINVAL, "readout %u is not in the deployment", k);
                goto out;
            }
            const sm_core_t *co = &dep->cores[dep->pieces[dep->piece_of[id]].core];
            uint32_t n = 0;
            if ((rc = sm_mesh_add_tree(&lm, co->tile, k, 0xFFFFFFFFu, dst, nd, tree, &n, eb)) != 0)
                goto out;
            uint64_t h, dl;
            double pj;
            sm__tree_cost(m, cost, tree, n, &h, &dl, &pj);
            tf->learning_packets += learn_per_readout;
            tf->learning_hops += learn_per_readout * h;
            tf->learning_deliveries += learn_per_readout * dl;
            tf->learning_hop_pj += (double)learn_per_readout * pj;
            sm_mesh_count_tree(m, tree, n, learn_per_readout);
        }
    }
    for (uint32_t c = 0; c < dep->ncores; c++)
        tf->cc[c].packets_in = m->core_packets[(size_t)dep->cores[c].tile * cpt + dep->cores[c].slot];
    sm_mesh_busiest_link(m, &tf->busy_tile, &tf->busy_dir, &tf->busy_packets);
out:
    if (lm.tables)
        sm_mesh_free(&lm);
    free(tree);
    free(dst);
    return rc;
}

/* --update-every: each online update applies the steps' gradient with Adam; the trial's figures are kept for the
 * learning curve. */
typedef struct {
    sm_opt_t *opt;
    sm_eprop_net_t *net;
    double loss, correct, trials;
    double *spikes; /* [n_rec] */
    sm_eprop_counters_t ops;
} sm__online_t;

static void sm__online_update(void *ctx, sm_eprop_grad_t *g, uint32_t steps)
{
    sm__online_t *o = ctx;
    const sm_eprop_params_t *p = &o->net->p;
    o->loss += g->loss;
    o->correct += g->correct;
    o->trials += g->trials;
    o->ops.trace_updates += g->ops.trace_updates;
    o->ops.learning_packets += g->ops.learning_packets;
    o->ops.neuron_updates += g->ops.neuron_updates;
    o->ops.spikes += g->ops.spikes;
    for (uint32_t j = 0; j < p->n_rec; j++)
        o->spikes[j] += g->spikes[j];
    g->trials = 1; /* the steps since the last update count as one trial */
    sm_eprop_grad_finish(g, p, steps);
    sm_opt_step(o->opt, o->net, g, &o->ops);
    sm_eprop_grad_zero(g, p);
}

static volatile int sm__stop = 0;
static void sm__on_signal(int sig)
{
    (void)sig;
    sm__stop = 1;
}

int sm_cmd_train(int argc, char **argv)
{
    enum { O_ITER = 1, O_BATCH, O_LR, O_SEED, O_THREADS, O_TEST, O_TBITS, O_WBITS, O_CHIP, O_OUT, O_JSON, O_PROG,
           O_NOPROG, O_EVERY };
    static const struct option opts[] = {
        {"iterations", required_argument, 0, O_ITER}, {"batch", required_argument, 0, O_BATCH},
        {"lr", required_argument, 0, O_LR},           {"seed", required_argument, 0, O_SEED},
        {"threads", required_argument, 0, O_THREADS}, {"test-trials", required_argument, 0, O_TEST},
        {"trace-bits", required_argument, 0, O_TBITS}, {"weight-bits", required_argument, 0, O_WBITS},
        {"chip", required_argument, 0, O_CHIP},       {"out", required_argument, 0, O_OUT},
        {"json", no_argument, 0, O_JSON},             {"progress", no_argument, 0, O_PROG},
        {"no-progress", no_argument, 0, O_NOPROG},    {"update-every", required_argument, 0, O_EVERY},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    uint64_t iters = 0, batch = 0, seed = 1, threads = 0, test_trials = 256, tbits = 0, wbits = 0, every = 0;
    int every_set = 0;
    double lr = -1;
    const char *out = NULL, *chip = "loihi";
    int json = 0, progress = -1, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        /* A value that is no number is said by sm_cli_*; one out of range here, with the range. */
        const char *range = NULL;
        switch (c) {
        case O_ITER:
            if (sm_cli_u64("train", "--iterations", optarg, &iters))
                return SM_EXIT_BADINPUT;
            range = iters < 1 || iters > 10000000 ? "must be between 1 and 10000000" : NULL;
            break;
        case O_BATCH:
            if (sm_cli_u64("train", "--batch", optarg, &batch))
                return SM_EXIT_BADINPUT;
            range = batch < 1 || batch > SM__MAX_BATCH ? "must be between 1 and " SM__STR(SM__MAX_BATCH) : NULL;
            break;
        case O_LR:
            if (sm_cli_double("train", "--lr", optarg, &lr))
                return SM_EXIT_BADINPUT;
            range = !(lr > 0) ? "must be positive" : NULL;
            break;
        case O_SEED:
            if (sm_cli_u64("train", "--seed", optarg, &seed))
                return SM_EXIT_BADINPUT;
            range = seed > (uint64_t)INT64_MAX ? "must be below 2^63" : NULL;
            break;
        case O_THREADS:
            if (sm_cli_u64("train", "--threads", optarg, &threads))
                return SM_EXIT_BADINPUT;
            range = threads < 1 || threads > 1024 ? "must be between 1 and 1024" : NULL;
            break;
        case O_TEST:
            if (sm_cli_u64("train", "--test-trials", optarg, &test_trials))
                return SM_EXIT_BADINPUT;
            range = test_trials > 1000000 ? "must be between 0 and 1000000" : NULL;
            break;
        case O_TBITS:
            if (sm_cli_u64("train", "--trace-bits", optarg, &tbits))
                return SM_EXIT_BADINPUT;
            range = tbits == 1 || tbits > 32 ? "must be 0 (float64) or 2 to 32" : NULL;
            break;
        case O_WBITS:
            if (sm_cli_u64("train", "--weight-bits", optarg, &wbits))
                return SM_EXIT_BADINPUT;
            range = wbits == 1 || wbits > 32 ? "must be 0 (float64) or 2 to 32" : NULL;
            break;
        case O_CHIP: chip = optarg; break;
        case O_OUT: out = optarg; break;
        case O_JSON: json = 1; break;
        case O_PROG: progress = 1; break;
        case O_NOPROG: progress = 0; break;
        case O_EVERY:
            if (sm_cli_u64("train", "--update-every", optarg, &every))
                return SM_EXIT_BADINPUT;
            range = every > 10000000 ? "must be between 0 and 10000000" : NULL;
            every_set = 1;
            break;
        case 'h': fputs(sm_usage_train, stdout); return 0;
        case ':':
            fprintf(stderr, "spikemesh train: option '%s' needs a value (see --help)\n", argv[optind - 1]);
            return SM_EXIT_BADINPUT;
        default:
            /* As run's options: optopt is the option's value for a long option given a value it does not take,
             * the letter for an unknown short option, 0 for an unknown long option. */
            if (optopt >= O_ITER && optopt <= O_EVERY)
                fprintf(stderr, "spikemesh train: option '--%s' takes no value (see --help)\n",
                        opts[optopt - 1].name);
            else if (optopt == 'h')
                fprintf(stderr, "spikemesh train: option '--help' takes no value\n");
            else if (optopt != 0)
                fprintf(stderr, "spikemesh train: unknown option '-%c' (see --help)\n", optopt);
            else
                fprintf(stderr, "spikemesh train: unknown option '%s' (see --help)\n", argv[optind - 1]);
            return SM_EXIT_BADINPUT;
        }
        if (range) {
            fprintf(stderr, "spikemesh train: --%s '%s': %s\n", opts[c - 1].name, optarg, range);
            return SM_EXIT_BADINPUT;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "spikemesh train: which task? (pattern, evidence or a task JSON file; see --help)\n");
        return SM_EXIT_BADINPUT;
    }
    if (optind + 1 < argc) {
        fprintf(stderr, "spikemesh train: unexpected argument '%s' (see --help)\n", argv[optind + 1]);
        return SM_EXIT_BADINPUT;
    }
    const char *spec = argv[optind];
    sm_task_t task;
    sm_errbuf_t eb = {0};
    if (strcmp(spec, "pattern") == 0)
        sm__task_pattern(&task);
    else if (strcmp(spec, "evidence") == 0)
        sm__task_evidence(&task);
    else if (strchr(spec, '/') || strstr(spec, ".json") || access(spec, F_OK) == 0) {
        if (sm__task_load(spec, &task, &eb) != 0) {
            fprintf(stderr, "spikemesh train: %s\n", eb.msg);
            return SM_EXIT_BADINPUT;
        }
    } else {
        fprintf(stderr, "spikemesh train: unknown task '%s' (built-in: pattern, evidence; or a task JSON file)\n",
                spec);
        return SM_EXIT_BADINPUT;
    }
    if (iters)
        task.iterations = (uint32_t)iters;
    if (batch)
        task.batch = (uint32_t)batch;
    if (lr > 0)
        task.lr = lr;
    if (every_set)
        task.update_every = (uint32_t)every;
    task.p.trace_bits = (uint32_t)tbits;
    task.p.weight_bits = (uint32_t)wbits;
    int cls = task.p.loss == SM_EPROP_CLASSIFICATION;
    /* Every check before anything is made or written: --out, the chip, the sizes against the chip (from the sizes
     * alone, before the weights), the initial weights, then the exact fit. The folder is created after them. */
    struct stat ost;
    if (out && stat(out, &ost) == 0 && !S_ISDIR(ost.st_mode)) {
        fprintf(stderr, "spikemesh train: --out '%s': exists and is not a folder\n", out);
        return SM_EXIT_BADINPUT;
    }
    if (out && stat(out, &ost) == 0 && access(out, W_OK | X_OK) != 0) {
        fprintf(stderr, "spikemesh train: --out '%s': cannot write into the folder: %s\n", out, strerror(errno));
        return SM_EXIT_BADINPUT;
    }
    sm_chip_t chip_desc;
    struct stat chst;
    if (sm_eprop_params_check(&task.p, &eb) != 0 || sm_chip_resolve(chip, &chip_desc, &eb) != 0) {
        fprintf(stderr, "spikemesh train: %s\n", eb.msg);
        return SM_EXIT_BADINPUT;
    }
    int preset = stat(chip, &chst) != 0; /* resolved and not a file */
    const char *netname = task.kind == SM_TASK_PATTERN ? "trained_pattern" : "trained_evidence";
    if (sm__fit_bound(&task.p, netname, &chip_desc, preset, &eb) != 0) {
        fprintf(stderr, "spikemesh train: %s: %s\n", task.name, eb.msg);
        return SM_EXIT_BADINPUT;
    }
    /* A batch holds every trial's inputs, mask and targets at once (sm__batch_alloc): refuse one larger than the
     * machine. */
    double need = (double)task.batch * task.nsteps * (task.p.n_in + 1.0 + 8.0 * task.p.n_out);
    double phys = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (phys > 0 && need > phys) {
        fprintf(stderr,
                "spikemesh train: %s: a batch of %u trials of %u steps with %u inputs needs %.3g GiB for its inputs "
                "and targets, more than this machine's %.3g GiB (lower batch, steps or n_in)\n",
                spec, task.batch, task.nsteps, task.p.n_in, need / 1073741824.0, phys / 1073741824.0);
        return SM_EXIT_BADINPUT;
    }

    sm_eprop_net_t net;
    sm_opt_t opt = {0};
    sm_eprop_grad_t g = {0};
    sm__batch_t bt = {0};
    sm__curve_t cv = {0};
    int status = SM_EXIT_BADINPUT, made_out = 0;
    char why[256];
    if (sm_eprop_net_init(&net, &task.p, seed, &eb) != 0) {
        fprintf(stderr, "spikemesh train: %s\n", eb.msg);
        return SM_EXIT_BADINPUT;
    }
    if (sm__export_bad(&net, why, sizeof why)) {
        fprintf(stderr, "spikemesh train: %s: the initial weights cannot be saved as a network: %s (see the weight "
                "scales and time constants of the task)\n", task.name, why);
        sm_eprop_net_free(&net);
        return SM_EXIT_BADINPUT;
    }
    /* Refuse before training when the traces do not fit. */
    char *txt = sm__net_json(&net, &task);
    uint64_t trace_bytes = 0;
    sm_net_t cnet;
    sm_deploy_t dep;
    int have_dep = 0;
    uint64_t *nspk = NULL, trained_steps = 0;
    sm_eprop_work_t *work = NULL;
    double *online_spk = NULL;
    sm__traffic_t tf = {0};
    if (!txt || sm__check_fit(txt, &task.p, &chip_desc, preset, seed, &trace_bytes, &cnet, &dep, &eb) != 0) {
        fprintf(stderr, "spikemesh train: %s: %s\n", task.name, txt ? eb.msg : "out of memory");
        free(txt);
        sm_eprop_net_free(&net);
        return SM_EXIT_BADINPUT;
    }
    int blocked = out ? sm__blocked(out, sm__out_files, 4) : -1;
    if (blocked >= 0) {
        fprintf(stderr, "spikemesh train: --out '%s': cannot write %s: a directory has that name\n", out,
                sm__out_files[blocked]);
        free(txt);
        sm_deploy_free(&dep);
        sm_net_free(&cnet);
        sm_eprop_net_free(&net);
        return SM_EXIT_BADINPUT;
    }
    /* made_out: this run made the folder, and removes it again (when still empty) if training fails. */
    if (out && mkdir(out, 0777) == 0)
        made_out = 1;
    else if (out && errno != EEXIST) {
        fprintf(stderr, "spikemesh train: --out '%s': cannot create the folder: %s\n", out, strerror(errno));
        free(txt);
        sm_deploy_free(&dep);
        sm_net_free(&cnet);
        sm_eprop_net_free(&net);
        return SM_EXIT_BADINPUT;
    }
    free(txt);
    txt = NULL;
    have_dep = 1;
    nspk = calloc((size_t)task.p.n_in + task.p.n_rec, sizeof *nspk);
    online_spk = calloc(task.p.n_rec, sizeof *online_spk);
    work = task.update_every ? sm_eprop_work_new(&task.p) : NULL;
    if (!nspk || !online_spk || (task.update_every && !work) || sm_opt_init(&opt, SM_OPT_ADAM, task.lr, &task.p) != 0 || sm_eprop_grad_alloc(&g, &task.p) != 0 ||
        sm__batch_alloc(&bt, &task, task.batch) != 0) {
        fprintf(stderr, "spikemesh train: out of memory\n");
        goto done;
    }
    opt.w_min = task.w_min;
    opt.w_max = task.w_max;
    cv.loss = calloc(task.iterations, sizeof(double));
    cv.acc = calloc(task.iterations, sizeof(double));
    cv.rate = calloc(task.iterations, sizeof(double));
    cv.wall = calloc(task.iterations, sizeof(double));
    if (!cv.loss || !cv.acc || !cv.rate || !cv.wall) {
        fprintf(stderr, "spikemesh train: out of memory\n");
        goto done;
    }
    signal(SIGINT, sm__on_signal);
    signal(SIGTERM, sm__on_signal);
    int bar = progress > 0 || (progress < 0 && !json && isatty(STDERR_FILENO));
    sm_eprop_counters_t ops = {0};
    uint64_t t0 = uv_hrtime();
    double reach_wall = -1, loop_s = 0;
    int64_t reach_it = -1;
    if (!json)
        printf("spikemesh train: %s, %u inputs, %u LIF + %u ALIF, %u readouts, %u steps, batch %u, Adam lr %g "
               "(x %g every %u iterations), seed %llu\n", task.name, task.p.n_in, task.p.n_rec - task.p.n_alif,
               task.p.n_alif, task.p.n_out, task.nsteps, task.batch, task.lr, task.lr_decay, task.lr_decay_every,
               (unsigned long long)seed);
    for (uint32_t it = 0; it < task.iterations && !sm__stop; it++) {
        for (uint32_t b = 0; b < task.batch; b++)
            sm__make_trial(&task, seed, it * task.batch + b, &bt, b);
        opt.lr = task.lr * pow(task.lr_decay, (double)(it / task.lr_decay_every));
        if (task.update_every) {
            /* Online: the trials of the batch one after the other, each updating the weights as it goes. */
            sm__online_t on = {.opt = &opt, .net = &net, .spikes = online_spk};
            memset(online_spk, 0, task.p.n_rec * sizeof(double));
            for (uint32_t b = 0; b < task.batch; b++) {
                sm_eprop_grad_zero(&g, &task.p);
                sm_eprop_trial_online(&net, work, &bt.tr[b], it * task.batch + b, &g, NULL, task.update_every,
                                      sm__online_update, &on);
            }
            g.loss = on.loss;
            g.correct = on.correct;
            g.trials = on.trials;
            memcpy(g.spikes, online_spk, task.p.n_rec * sizeof(double));
            g.ops = on.ops;
            ops.weight_updates += on.ops.weight_updates;
        } else {
            if (sm_eprop_batch(&net, bt.tr, task.batch, it * task.batch, (uint32_t)threads, &g, &eb) != 0) {
                fprintf(stderr, "spikemesh train: %s\n", eb.msg);
                goto done;
            }
            sm_opt_step(&opt, &net, &g, &ops);
        }
        ops.trace_updates += g.ops.trace_updates;
        ops.learning_packets += g.ops.learning_packets;
        ops.neuron_updates += g.ops.neuron_updates;
        ops.spikes += g.ops.spikes;
        /* Spikes per neuron for the traffic on the chip: inputs from the batch's trials, recurrent from g. */
        for (uint32_t b = 0; b < task.batch; b++) {
            const uint8_t *x = bt.tr[b].x;
            for (uint64_t q = 0; q < (uint64_t)task.nsteps * task.p.n_in; q++)
                nspk[q % task.p.n_in] += x[q];
        }
        for (uint32_t j = 0; j < task.p.n_rec; j++)
            nspk[task.p.n_in + j] += (uint64_t)g.spikes[j];
        trained_steps += (uint64_t)task.batch * task.nsteps;
        double spk = 0;
        for (uint32_t j = 0; j < task.p.n_rec; j++)
            spk += g.spikes[j];
        cv.loss[it] = g.loss / g.trials;
        cv.acc[it] = g.correct / g.trials;
        cv.rate[it] = spk / g.trials / task.p.n_rec / (task.nsteps * task.p.dt * 1e-3);
        cv.wall[it] = (double)(uv_hrtime() - t0) * 1e-9;
        cv.n = it + 1;
        /* A loss or weights that are no longer numbers (or too large for the network file) end training: the
         * outputs would not load. */
        int inf_loss = !isfinite(cv.loss[it]);
        if (inf_loss || sm__export_bad(&net, why, sizeof why)) {
            if (inf_loss)
                snprintf(why, sizeof why, "the loss is %g", cv.loss[it]);
            if (bar)
                fprintf(stderr, "\r\033[K");
            fprintf(stderr, "spikemesh train: %s: iteration %u: training diverged: %s; the learning rate (lr %g) is "
                    "too large%s\n", task.name, it + 1, why, opt.lr, out ? "; nothing written to --out" : "");
            goto done;
        }
        /* Accuracy reached: the mean over the last 10 batches (fresh trials, before their update) >= 93%. */
        if (cls && reach_it < 0 && it >= 9) {
            double m = 0;
            for (uint32_t q = it - 9; q <= it; q++)
                m += cv.acc[q];
            if (m / 10 >= 0.93) {
                reach_it = it + 1;
                reach_wall = cv.wall[it];
            }
        }
        if (!json) {
            if (bar)
                fprintf(stderr, "\r\033[K");
            if (cls)
                printf("iteration %u: loss %.6f, accuracy %.3f, rate %.1f Hz\n", it + 1, cv.loss[it], cv.acc[it],
                       cv.rate[it]);
            else
                printf("iteration %u: loss %.6f (%.1f%% of the first), rate %.1f Hz\n", it + 1, cv.loss[it],
                       100.0 * cv.loss[it] / cv.loss[0], cv.rate[it]);
            fflush(stdout);
        }
        if (bar) {
            int w = 30, f = (int)((double)w * (it + 1) / task.iterations);
            fprintf(stderr, "\r[%.*s%*s] %u/%u loss %.4g", f, "##############################", w - f, "", it + 1,
                    task.iterations, cv.loss[it]);
            fflush(stderr);
        }
    }
    loop_s = (double)(uv_hrtime() - t0) * 1e-9;
    if (bar)
        fprintf(stderr, "\r\033[K");
    /* Accuracy on fresh trials never used for training. */
    double test_acc = -1;
    if (cls && test_trials > 0 && !sm__stop) {
        double corr = 0, n = 0;
        for (uint64_t k = 0; k < test_trials; k += task.batch) {
            uint32_t m = (uint32_t)(test_trials - k < task.batch ? test_trials - k : task.batch);
            for (uint32_t b = 0; b < m; b++)
                sm__make_trial(&task, seed, 0x80000000u + (uint32_t)k + b, &bt, b);
            if (sm_eprop_batch(&net, bt.tr, m, 0x80000000u + (uint32_t)k, (uint32_t)threads, &g, &eb) != 0)
                break;
            corr += g.correct;
            n += g.trials;
        }
        test_acc = n > 0 ? corr / n : -1;
    }
    double thr = loop_s > 0 ? (double)ops.trace_updates / loop_s : 0;
    if (sm__count_traffic(&dep, &task.p, nspk, task.p.n_out ? ops.learning_packets / task.p.n_out : 0,
                          trained_steps, &tf, &eb) != 0) {
        fprintf(stderr, "spikemesh train: traffic on the chip: %s\n", eb.msg[0] ? eb.msg : "out of memory");
        goto done;
    }
    const sm_costs_t *cst = &dep.chip.costs;
    double e_trace = (double)ops.trace_updates * cst->syn_op_pj, e_weight = (double)ops.weight_updates * cst->syn_update_pj;
    double e_spike = tf.spike_hop_pj + (double)tf.spike_deliveries * cst->spike_tile_pj;
    double e_learn = tf.learning_hop_pj + (double)tf.learning_deliveries * cst->spike_tile_pj;
    double e_total = e_trace + e_weight + e_spike + e_learn;
    uint32_t bx = tf.busy_dir >= 0 ? tf.busy_tile % dep.mesh.width : 0, by = tf.busy_dir >= 0 ? tf.busy_tile / dep.mesh.width : 0;
    static const char *const dirn[SM_NDIRS] = {"E", "N", "W", "S"};
    if (out) {
        const char *const *names = sm__out_files;
        char *texts[4];
        size_t lens[4] = {0, 0, 0, 0};
        texts[0] = sm__curve_csv(&cv, cls, &lens[0]);
        texts[1] = sm__curve_svg(&cv, cls, task.name, &lens[1]);
        texts[2] = sm__net_json(&net, &task);
        texts[3] = sm_traffic_json_text(&dep, tf.cc);
        int rc = texts[0] && texts[1] && texts[2] && texts[3] ? 0 : SM_ENOMEM;
        lens[2] = texts[2] ? strlen(texts[2]) : 0;
        lens[3] = texts[3] ? strlen(texts[3]) : 0;
        if (rc == 0)
            rc = sm__write_all(out, names, texts, lens, 4, &eb);
        for (int k = 0; k < 4; k++)
            free(texts[k]);
        if (rc != 0) {
            fprintf(stderr, "spikemesh train: %s\n", rc == SM_ENOMEM ? "out of memory" : eb.msg);
            goto done;
        }
    }
    double first = cv.n ? cv.loss[0] : 0, last = cv.n ? cv.loss[cv.n - 1] : 0;
    if (json) {
        json_t *o = json_pack("{s:s,s:i,s:i,s:f,s:f,s:f,s:f,s:I,s:I,s:I,s:I,s:f}", "task", task.name, "iterations",
                              (json_int_t)cv.n, "batch", (json_int_t)task.batch, "first_loss", first, "final_loss",
                              last, "loss_ratio", first > 0 ? last / first : 0.0, "wall_seconds", loop_s,
                              "trace_updates", (json_int_t)ops.trace_updates, "weight_updates",
                              (json_int_t)ops.weight_updates, "learning_packets", (json_int_t)ops.learning_packets,
                              "trace_bytes", (json_int_t)trace_bytes, "trace_updates_per_second", thr);
        json_t *busy = tf.busy_dir < 0 ? json_null()
                                        : json_pack("{s:[I,I],s:s,s:I}", "from", (json_int_t)bx, (json_int_t)by,
                                                    "dir", dirn[tf.busy_dir], "packets", (json_int_t)tf.busy_packets);
        json_object_set_new(
            o, "chip",
            json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "name", dep.chip.name, "cores",
                      (json_int_t)dep.ncores, "spike_packets", (json_int_t)tf.spike_packets, "learning_packets",
                      (json_int_t)tf.learning_packets, "hops", (json_int_t)(tf.spike_hops + tf.learning_hops),
                      "spike_hops", (json_int_t)tf.spike_hops, "learning_hops", (json_int_t)tf.learning_hops,
                      "deliveries", (json_int_t)(tf.spike_deliveries + tf.learning_deliveries), "learning_deliveries",
                      (json_int_t)tf.learning_deliveries, "busiest_link", busy));
        json_object_set_new(o, "energy_pj",
                            json_pack("{s:f,s:f,s:f,s:f,s:f}", "trace_updates", e_trace, "weight_updates", e_weight,
                                      "spike_packets", e_spike, "learning_packets", e_learn, "total", e_total));
        if (cls) {
            json_object_set_new(o, "final_batch_accuracy", json_real(cv.n ? cv.acc[cv.n - 1] : 0.0));
            json_object_set_new(o, "test_accuracy", json_real(test_acc));
            json_object_set_new(o, "iterations_to_93", json_integer(reach_it));
            json_object_set_new(o, "seconds_to_93", json_real(reach_wall));
        }
        if (sm_cli_put_json("train", o) != 0) { /* the outputs are written: they stay */
            status = SM_EXIT_BADINPUT;
            made_out = 0;
            goto done;
        }
    } else {
        printf("  %-15s %.6g -> %.6g (%.1f%% of the first)\n", "loss", first, last, first > 0 ? 100 * last / first : 0);
        if (cls) {
            printf("  %-15s %.3f on %llu fresh trials\n", "accuracy", test_acc, (unsigned long long)test_trials);
            if (reach_it > 0)
                printf("  %-15s 93%% (mean of 10 batches) at iteration %lld, %.1f s\n", "reached", (long long)reach_it,
                       reach_wall);
        }
        printf("  %-15s %.1f s, %.3g synapse-trace updates per second\n", "wall time", loop_s, thr);
        printf("  %-15s %llu trace updates, %llu weight updates, %llu learning-signal packets; traces %llu B\n",
               "operations", (unsigned long long)ops.trace_updates, (unsigned long long)ops.weight_updates,
               (unsigned long long)ops.learning_packets, (unsigned long long)trace_bytes);
        printf("  %-15s %s, %u cores: %llu spike packets, %llu learning-signal packets, %llu hops, %llu "
               "deliveries", "chip", dep.chip.name, dep.ncores, (unsigned long long)tf.spike_packets,
               (unsigned long long)tf.learning_packets, (unsigned long long)(tf.spike_hops + tf.learning_hops),
               (unsigned long long)(tf.spike_deliveries + tf.learning_deliveries));
        if (tf.busy_dir >= 0)
            printf("; busiest link (%u,%u) %s, %llu packets\n", bx, by, dirn[tf.busy_dir],
                   (unsigned long long)tf.busy_packets);
        else
            printf("; no packet crossed a link\n");
        printf("  %-15s %.4g J: traces %.4g, weight updates %.4g, spike packets %.4g, learning signals %.4g\n",
               "energy", e_total * 1e-12, e_trace * 1e-12, e_weight * 1e-12, e_spike * 1e-12, e_learn * 1e-12);
        if (out)
            printf("  %-15s %s/{learning_curve.csv,learning_curve.svg,trained_network.json,traffic.json}\n",
                   "outputs", out);
    }
    status = sm__stop ? SM_EXIT_INTERRUPTED : 0;
done:
    if (made_out && status != 0 && status != SM_EXIT_INTERRUPTED)
        rmdir(out);
    if (work)
        sm_eprop_work_free(work);
    free(online_spk);
    free(tf.cc);
    free(nspk);
    if (have_dep) {
        sm_deploy_free(&dep);
        sm_net_free(&cnet);
    }
    free(txt);
    free(cv.loss);
    free(cv.acc);
    free(cv.rate);
    free(cv.wall);
    sm__batch_free(&bt);
    sm_eprop_grad_free(&g);
    sm_opt_free(&opt);
    sm_eprop_net_free(&net);
    return status;
}
