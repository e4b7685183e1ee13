/* tools/cli.c: helpers shared by the spikemesh subcommands: strict parsing of option values with messages
 * that name the command, the option and the rule broken. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

int sm_cli_double(const char *cmd, const char *opt, const char *arg, double *out)
{
    char *end;
    /* Decimal only: strtod would also take leading blanks, hexadecimal and "inf"/"nan". An underflow to 0 is
     * fine; an overflow gives inf. */
    double v = strtod(arg, &end);
    if (end == arg || *end != '\0' || !isfinite(v) || strpbrk(arg, "xX") || !(isdigit((unsigned char)arg[0]) ||
        arg[0] == '.' || arg[0] == '-' || arg[0] == '+')) {
        fprintf(stderr, "spikemesh %s: %s '%s': not a finite decimal number\n", cmd, opt, arg);
        return -1;
    }
    if (v < 0) {
        fprintf(stderr, "spikemesh %s: %s '%s': must not be negative\n", cmd, opt, arg);
        return -1;
    }
    *out = v;
    return 0;
}

int sm_cli_u64(const char *cmd, const char *opt, const char *arg, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = arg[0] >= '0' && arg[0] <= '9' ? strtoull(arg, &end, 10) : 0;
    if (arg[0] < '0' || arg[0] > '9' || *end != '\0') {
        fprintf(stderr, "spikemesh %s: %s '%s': not a whole number (0 or more, digits only)\n", cmd, opt, arg);
        return -1;
    }
    if (errno == ERANGE) {
        fprintf(stderr, "spikemesh %s: %s '%s': must be below 2^64\n", cmd, opt, arg);
        return -1;
    }
    *out = v;
    return 0;
}
