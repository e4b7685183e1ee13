/* spikemesh/common.h: error codes, the error message buffer and the counter-based random generator
 * shared by every subsystem. */
#ifndef SPIKEMESH_COMMON_H
#define SPIKEMESH_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes: 0 is success, every error is negative. One table generates the enum and sm_strerror. */
#define SM_ERRNO_MAP(XX)                                             \
    XX(EINVAL, -1, "invalid argument")                              \
    XX(ENOMEM, -2, "out of memory")                                 \
    XX(EIO, -3, "input/output error")                               \
    XX(EPARSE, -4, "malformed input")                               \
    XX(ENOFIT, -5, "network does not fit the chip")                 \
    XX(ERANGE, -6, "value out of range")                            \
    XX(ENOENT, -7, "unknown name")                                  \
    XX(EROUTE, -8, "routing failure")                               \
    XX(EINTR, -9, "interrupted")

typedef enum {
    SM_OK = 0,
#define SM__ERR_ENUM(name, val, text) SM_##name = (val),
    SM_ERRNO_MAP(SM__ERR_ENUM)
#undef SM__ERR_ENUM
} sm_err_t;

/* Returns a static description of an error code; never NULL. */
const char *sm_strerror(int err);

/* A message that says what went wrong and where ("net.json:14:7: ..."). Functions that can fail on user
 * input take an sm_errbuf_t * (may be NULL) and fill it before returning a negative code. */
#define SM_ERRBUF_SIZE 1024
typedef struct {
    int code;
    char msg[SM_ERRBUF_SIZE];
} sm_errbuf_t;

/* Formats msg into eb (when eb is not NULL) and returns code, so callers can write
 * `return sm_errorf(eb, SM_EINVAL, "...")`. */
int sm_errorf(sm_errbuf_t *eb, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Copies src into dst (size bytes with the terminating NUL, size at least 1) as valid UTF-8: a byte that does
 * not start a well-formed character (RFC 3629: no overlong forms, surrogates or code points past U+10FFFF)
 * becomes '?', and the copy stops before a character that would not fit whole (text that is not valid UTF-8
 * would make every JSON output invalid). Returns 1 if it changed or cut src, else 0. */
static inline int sm_utf8_copy(char *dst, size_t size, const char *src)
{
    const unsigned char *u = (const unsigned char *)src;
    size_t i = 0, o = 0;
    int changed = 0;
    while (u[i]) {
        unsigned c = u[i];
        size_t len = c < 0x80                  ? 1
                     : c >= 0xC2 && c <= 0xDF ? 2
                     : c >= 0xE0 && c <= 0xEF ? 3
                     : c >= 0xF0 && c <= 0xF4 ? 4
                                              : 0;
        unsigned lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80, hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
        for (size_t k = 1; k < len; k++)
            if (u[i + k] < (k == 1 ? lo : 0x80) || u[i + k] > (k == 1 ? hi : 0xBF))
                len = 0; /* also stops at the NUL */
        if (o + (len ? len : 1) >= size) {
            changed = 1;
            break;
        }
        if (len == 0) {
            dst[o++] = '?';
            i++;
            changed = 1;
            continue;
        }
        for (size_t k = 0; k < len; k++)
            dst[o++] = (char)u[i + k];
        i += len;
    }
    dst[o] = '\0';
    return changed;
}

/* Random streams: every random number is a pure function of (seed, stream, a, b, counter), so results do
 * not depend on placement, thread count or evaluation order. */
typedef enum {
    SM_STREAM_CONNECT = 1, /* a = projection index, b = presynaptic neuron (local index) */
    SM_STREAM_INIT = 2,    /* a = 0, b = global neuron id */
    SM_STREAM_POISSON = 3, /* a = global neuron id, b = step (low 32 bits), counter = step >> 32 */
    SM_STREAM_WEIGHT = 4,  /* a = projection index, b = presynaptic neuron */
    SM_STREAM_TRAFFIC = 5, /* a = tile, b = cycle (low 32 bits), counter = cycle >> 32 */
    SM_STREAM_USER = 16
} sm_stream_t;

/* Philox4x32-10 evaluated at counter (stream, a, b, counter) with key = seed: four 32-bit words. */
void sm_philox(uint64_t seed, uint32_t stream, uint32_t a, uint32_t b, uint32_t counter, uint32_t out[4]);

/* A double in [0, 1) from two 32-bit words (53 random bits). */
static inline double sm_u01(uint32_t hi, uint32_t lo)
{
    uint64_t x = ((uint64_t)hi << 21) ^ (uint64_t)(lo >> 11);
    return (double)(x & ((UINT64_C(1) << 53) - 1)) * (1.0 / 9007199254740992.0);
}

#ifdef __cplusplus
}
#endif
#endif
