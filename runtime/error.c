/* runtime/error.c: the error table (sm_strerror) and the error message buffer. */
#include <stdarg.h>
#include <stdio.h>

#include "spikemesh/common.h"

const char *sm_strerror(int err)
{
    switch (err) {
    case SM_OK:
        return "success";
#define SM__ERR_CASE(name, val, text) \
    case SM_##name:                   \
        return text;
        SM_ERRNO_MAP(SM__ERR_CASE)
#undef SM__ERR_CASE
    default:
        return "unknown error";
    }
}

int sm_errorf(sm_errbuf_t *eb, int code, const char *fmt, ...)
{
    if (eb != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(eb->msg, sizeof eb->msg, fmt, ap);
        va_end(ap);
        eb->code = code;
    }
    return code;
}
