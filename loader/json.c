/* loader/json.c: typed access to JSON members with errors located as file:line:column, and file reading. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "loader/json.h"

#define SM__FILE_MAX (UINT64_C(1) << 31)

int sm__read_file(const char *path, char **text, size_t *len, sm_errbuf_t *eb)
{
    struct stat st;
    *text = NULL;
    *len = 0;
    if (stat(path, &st) != 0)
        return sm_errorf(eb, SM_EIO, "%s: cannot read: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return sm_errorf(eb, SM_EIO, "%s: cannot read: it is a directory", path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return sm_errorf(eb, SM_EIO, "%s: cannot read: %s", path, strerror(errno));
    size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 65536, n = 0;
    if ((uint64_t)cap > SM__FILE_MAX) {
        fclose(f);
        return sm_errorf(eb, SM_ERANGE, "%s: file is larger than 2 GiB", path);
    }
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return sm_errorf(eb, SM_ENOMEM, "%s: out of memory reading the file", path);
    }
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
        if (n + 1 >= cap) {
            if ((uint64_t)cap * 2 > SM__FILE_MAX) {
                free(buf);
                fclose(f);
                return sm_errorf(eb, SM_ERANGE, "%s: file is larger than 2 GiB", path);
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                fclose(f);
                return sm_errorf(eb, SM_ENOMEM, "%s: out of memory reading the file", path);
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (ferror(f)) {
        int e = errno;
        free(buf);
        fclose(f);
        return sm_errorf(eb, SM_EIO, "%s: read error: %s", path, strerror(e));
    }
    fclose(f);
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

int sm__json_parse(sm__jctx_t *cx, json_t **root)
{
    json_error_t je;
    size_t i = 0;
    while (i < cx->len && (cx->text[i] == ' ' || cx->text[i] == '\t' || cx->text[i] == '\n' || cx->text[i] == '\r'))
        i++;
    if (i == cx->len) {
        *root = NULL;
        cx->depth = 0;
        return sm__jerr(cx, SM_EPARSE, "the file is empty; expected a JSON object");
    }
    if (cx->len >= 3 && memcmp(cx->text, "\xef\xbb\xbf", 3) == 0) {
        *root = NULL;
        cx->depth = 0;
        return sm__jerr(cx, SM_EPARSE, "malformed JSON: the file starts with a UTF-8 byte order mark, which JSON "
                                       "does not allow; save it without one");
    }
    /* Any value is decoded, so that a top level that is not an object gets the clearer message below. */
    *root = json_loadb(cx->text, cx->len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!*root)
        return sm_errorf(cx->eb, SM_EPARSE, "%s:%d:%d: malformed JSON: %s", cx->file, je.line < 1 ? 1 : je.line,
                         je.column < 1 ? 1 : je.column, je.text);
    if (!json_is_object(*root)) {
        json_decref(*root);
        *root = NULL;
        cx->depth = 0;
        return sm__jerr(cx, SM_EPARSE, "the top level must be a JSON object");
    }
    return 0;
}

void sm__jpush_key(sm__jctx_t *cx, const char *key)
{
    if (cx->depth < SM__JPATH_MAX) {
        cx->path[cx->depth].key = key;
        cx->path[cx->depth].idx = 0;
    }
    cx->depth++;
}

void sm__jpush_idx(sm__jctx_t *cx, size_t idx)
{
    if (cx->depth < SM__JPATH_MAX) {
        cx->path[cx->depth].key = NULL;
        cx->path[cx->depth].idx = idx;
    }
    cx->depth++;
}

void sm__jpop(sm__jctx_t *cx)
{
    if (cx->depth > 0)
        cx->depth--;
}

/* ---- locating a path in the source text (the text is valid JSON: jansson accepted it) ---- */

typedef struct {
    const char *s, *end;
} sm__jscan_t;

static void sm__jws(sm__jscan_t *sc)
{
    while (sc->s < sc->end && (*sc->s == ' ' || *sc->s == '\t' || *sc->s == '\n' || *sc->s == '\r'))
        sc->s++;
}

static void sm__jskip_string(sm__jscan_t *sc)
{
    sc->s++; /* opening quote */
    while (sc->s < sc->end && *sc->s != '"') {
        if (*sc->s == '\\' && sc->s + 1 < sc->end)
            sc->s++;
        sc->s++;
    }
    if (sc->s < sc->end)
        sc->s++;
}

static void sm__jskip_value(sm__jscan_t *sc)
{
    sm__jws(sc);
    if (sc->s >= sc->end)
        return;
    if (*sc->s == '"') {
        sm__jskip_string(sc);
        return;
    }
    if (*sc->s == '{' || *sc->s == '[') {
        int depth = 0;
        while (sc->s < sc->end) {
            char c = *sc->s;
            if (c == '"') {
                sm__jskip_string(sc);
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if (c == '}' || c == ']') {
                depth--;
                if (depth == 0) {
                    sc->s++;
                    return;
                }
            }
            sc->s++;
        }
        return;
    }
    while (sc->s < sc->end && *sc->s != ',' && *sc->s != '}' && *sc->s != ']' && *sc->s != ' ' &&
           *sc->s != '\n' && *sc->s != '\r' && *sc->s != '\t')
        sc->s++;
}

/* Compares the JSON string at sc->s (raw, escapes compared literally) with key. */
static int sm__jkey_eq(const char *s, const char *end, const char *key, const char **after)
{
    sm__jscan_t sc = {s, end};
    sm__jskip_string(&sc);
    *after = sc.s;
    size_t klen = strlen(key);
    return (size_t)(sc.s - s) == klen + 2 && memcmp(s + 1, key, klen) == 0;
}

void sm__jlocate(const sm__jctx_t *cx, int *line, int *col)
{
    sm__jscan_t sc = {cx->text, cx->text + cx->len};
    const char *found;
    int depth = cx->depth < SM__JPATH_MAX ? cx->depth : SM__JPATH_MAX;
    sm__jws(&sc);
    found = sc.s;
    for (int k = 0; k < depth; k++) {
        const sm__jcomp_t *c = &cx->path[k];
        int ok = 0;
        sm__jws(&sc);
        if (sc.s >= sc.end)
            break;
        if (c->key && *sc.s == '{') {
            sc.s++;
            for (;;) {
                sm__jws(&sc);
                if (sc.s >= sc.end || *sc.s != '"')
                    break;
                const char *after;
                int eq = sm__jkey_eq(sc.s, sc.end, c->key, &after);
                sc.s = after;
                sm__jws(&sc);
                if (sc.s < sc.end && *sc.s == ':')
                    sc.s++;
                sm__jws(&sc);
                if (eq) {
                    ok = 1;
                    break;
                }
                sm__jskip_value(&sc);
                sm__jws(&sc);
                if (sc.s < sc.end && *sc.s == ',')
                    sc.s++;
                else
                    break;
            }
        } else if (!c->key && *sc.s == '[') {
            sc.s++;
            for (size_t i = 0;; i++) {
                sm__jws(&sc);
                if (sc.s >= sc.end || *sc.s == ']')
                    break;
                if (i == c->idx) {
                    ok = 1;
                    break;
                }
                sm__jskip_value(&sc);
                sm__jws(&sc);
                if (sc.s < sc.end && *sc.s == ',')
                    sc.s++;
                else
                    break;
            }
        }
        if (!ok)
            break;
        found = sc.s;
    }
    int ln = 1, cl = 1;
    for (const char *p = cx->text; p < found; p++) {
        if (*p == '\n') {
            ln++;
            cl = 1;
        } else if (((unsigned char)*p & 0xc0) != 0x80) {
            cl++;
        }
    }
    *line = ln;
    *col = cl;
}

static size_t sm__jpath_str(const sm__jctx_t *cx, char *buf, size_t cap)
{
    size_t n = 0;
    int depth = cx->depth < SM__JPATH_MAX ? cx->depth : SM__JPATH_MAX;
    buf[0] = '\0';
    for (int k = 0; k < depth && n < cap; k++) {
        int w;
        if (cx->path[k].key)
            w = snprintf(buf + n, cap - n, "%s%s", n ? "." : "", cx->path[k].key);
        else
            w = snprintf(buf + n, cap - n, "[%zu]", cx->path[k].idx);
        if (w < 0)
            break;
        n += (size_t)w;
    }
    return n;
}

int sm__jerr(sm__jctx_t *cx, int code, const char *fmt, ...)
{
    char what[512], path[256];
    int line, col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    sm__jlocate(cx, &line, &col);
    if (sm__jpath_str(cx, path, sizeof path) > 0)
        return sm_errorf(cx->eb, code, "%s:%d:%d: %s: %s", cx->file, line, col, path, what);
    return sm_errorf(cx->eb, code, "%s:%d:%d: %s", cx->file, line, col, what);
}

int sm__jcheck_keys(sm__jctx_t *cx, json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, key) == 0)
                ok = 1;
        if (!ok) {
            char list[400];
            size_t n = 0;
            list[0] = '\0';
            for (const char *const *a = allowed; *a && n < sizeof list; a++) {
                int w = snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "", *a);
                if (w < 0)
                    break;
                n += (size_t)w;
            }
            sm__jpush_key(cx, key);
            int rc = sm__jerr(cx, SM_EPARSE, "unknown field \"%s\" (known fields: %s)", key, list);
            sm__jpop(cx);
            return rc;
        }
    }
    return 0;
}

const char *sm__jtype(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

int sm__jget_num(sm__jctx_t *cx, json_t *obj, const char *key, int required, double def, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            return sm__jerr(cx, SM_EPARSE, "missing required field \"%s\"", key);
        *out = def;
        return 0;
    }
    sm__jpush_key(cx, key);
    int rc = 0;
    if (!json_is_number(v))
        rc = sm__jerr(cx, SM_EPARSE, "must be a number, not %s", sm__jtype(v));
    else if (!isfinite(json_number_value(v)))
        rc = sm__jerr(cx, SM_ERANGE, "must be a finite number");
    else
        *out = json_number_value(v);
    sm__jpop(cx);
    return rc;
}

int sm__jget_pos(sm__jctx_t *cx, json_t *obj, const char *key, int required, double def, double *out)
{
    int rc = sm__jget_num(cx, obj, key, required, def, out);
    if (rc == 0 && !(*out > 0.0)) {
        sm__jpush_key(cx, key);
        rc = sm__jerr(cx, SM_ERANGE, "must be positive, got %g", *out);
        sm__jpop(cx);
    }
    return rc;
}

int sm__jget_uint(sm__jctx_t *cx, json_t *obj, const char *key, int required, uint64_t def, uint64_t min,
                  uint64_t max, uint64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            return sm__jerr(cx, SM_EPARSE, "missing required field \"%s\"", key);
        *out = def;
        return 0;
    }
    sm__jpush_key(cx, key);
    int rc = 0;
    if (json_is_real(v)) {
        double d = json_real_value(v);
        /* (double)max rounds up for large max (UINT64_MAX to 2^64, INT64_MAX to 2^63): compare as integers, after
         * making sure that the cast is defined */
        if (d == floor(d) && d >= (double)min && d < 0x1p64 && (uint64_t)d <= max)
            *out = (uint64_t)d;
        else if (d != floor(d))
            rc = sm__jerr(cx, SM_EPARSE, "must be a whole number, got %g", d);
        else if (d < (double)min)
            rc = sm__jerr(cx, SM_ERANGE, "must be at least %llu, got %g", (unsigned long long)min, d);
        else
            rc = sm__jerr(cx, SM_ERANGE, d < 1e20 ? "must be at most %llu, got %.0f" : "must be at most %llu, got %g",
                          (unsigned long long)max, d); /* every digit where the two are close */
    } else if (!json_is_integer(v)) {
        rc = sm__jerr(cx, SM_EPARSE, "must be a whole number, not %s", sm__jtype(v));
    } else {
        json_int_t i = json_integer_value(v);
        if (i < 0 || (uint64_t)i < min)
            rc = sm__jerr(cx, SM_ERANGE, "must be at least %llu, got %lld", (unsigned long long)min, (long long)i);
        else if ((uint64_t)i > max)
            rc = sm__jerr(cx, SM_ERANGE, "must be at most %llu, got %lld", (unsigned long long)max, (long long)i);
        else
            *out = (uint64_t)i;
    }
    sm__jpop(cx);
    return rc;
}

int sm__jget_str(sm__jctx_t *cx, json_t *obj, const char *key, int required, const char *def,
                 const char **out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            return sm__jerr(cx, SM_EPARSE, "missing required field \"%s\"", key);
        *out = def;
        return 0;
    }
    if (!json_is_string(v)) {
        sm__jpush_key(cx, key);
        int rc = sm__jerr(cx, SM_EPARSE, "must be a string, not %s", sm__jtype(v));
        sm__jpop(cx);
        return rc;
    }
    *out = json_string_value(v);
    return 0;
}

int sm__jget_bool(sm__jctx_t *cx, json_t *obj, const char *key, int required, int def, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            return sm__jerr(cx, SM_EPARSE, "missing required field \"%s\"", key);
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v)) {
        sm__jpush_key(cx, key);
        int rc = sm__jerr(cx, SM_EPARSE, "must be true or false, not %s", sm__jtype(v));
        sm__jpop(cx);
        return rc;
    }
    *out = json_is_true(v);
    return 0;
}
