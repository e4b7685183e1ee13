/* loader/json.h: internal helpers of the JSON loaders: typed field access that reports errors as
 * file:line:column (located in the source text by path), on top of jansson. */
#ifndef SPIKEMESH_LOADER_JSON_H
#define SPIKEMESH_LOADER_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "spikemesh/common.h"

#define SM__JPATH_MAX 12

typedef struct {
    const char *key; /* object member, or NULL for an array element */
    size_t idx;
} sm__jcomp_t;

typedef struct {
    const char *file; /* name used in messages */
    const char *text;
    size_t len;
    sm_errbuf_t *eb;
    sm__jcomp_t path[SM__JPATH_MAX];
    int depth;
} sm__jctx_t;

/* Reads a whole file into a NUL-terminated buffer (caller frees). Errors name the file and the cause. */
int sm__read_file(const char *path, char **text, size_t *len, sm_errbuf_t *eb);

/* Parses text with jansson (duplicate keys rejected); errors as file:line:column. */
int sm__json_parse(sm__jctx_t *cx, json_t **root);

/* Path stack: push a member or an element, pop when done. */
void sm__jpush_key(sm__jctx_t *cx, const char *key);
void sm__jpush_idx(sm__jctx_t *cx, size_t idx);
void sm__jpop(sm__jctx_t *cx);

/* The name of a JSON value's type for messages: "an object", "an array", "a string", "a number", ... */
const char *sm__jtype(const json_t *v);

/* Reports an error at the value the current path names (or the nearest enclosing value that exists):
 * "file:line:col: <path>: <message>". Returns code. */
int sm__jerr(sm__jctx_t *cx, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Line and column (1-based, columns in characters) of the value at the current path; the deepest existing
 * prefix when the full path is absent. */
void sm__jlocate(const sm__jctx_t *cx, int *line, int *col);

/* Rejects members of obj not in the NULL-terminated list `allowed`. */
int sm__jcheck_keys(sm__jctx_t *cx, json_t *obj, const char *const *allowed);

/* Typed members of obj. When absent: required -> error, else *out = def. Range checks are the caller's. */
int sm__jget_num(sm__jctx_t *cx, json_t *obj, const char *key, int required, double def, double *out);
/* Whole number in [min, max]; a real with no fractional part (such as 1e3) is accepted. */
int sm__jget_uint(sm__jctx_t *cx, json_t *obj, const char *key, int required, uint64_t def, uint64_t min,
                  uint64_t max, uint64_t *out);
int sm__jget_str(sm__jctx_t *cx, json_t *obj, const char *key, int required, const char *def,
                 const char **out);
int sm__jget_bool(sm__jctx_t *cx, json_t *obj, const char *key, int required, int def, int *out);
/* Positive finite number (> 0). */
int sm__jget_pos(sm__jctx_t *cx, json_t *obj, const char *key, int required, double def, double *out);

#endif
