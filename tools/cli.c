/* tools/cli.c: helpers shared by the spikemesh subcommands: strict parsing of option values with messages
 * that name the command, the option and the rule broken. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include <jansson.h>

#include "spikemesh/loader.h"
#include "tools/cli.h"

int sm_cli_check_writable(const char *path)
{
    struct stat st;
    char tmp[4096];
    if (path[0] == '\0') { /* "" is no file (and would probe ".part" in the working folder) */
        errno = ENOENT;
        return -1;
    }
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        return -1;
    }
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.part", path) >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fclose(f);
    remove(tmp);
    return 0;
}

int sm_cli_double(const char *cmd, const char *opt, const char *arg, double *out)
{
    char *end;
    /* Decimal only: strtod would also take leading blanks, hexadecimal and "inf"/"nan". An overflow gives inf; a
     * number other than 0 that underflows to 0 is refused (--duration 1e-400 ran no step). */
    errno = 0;
    double v = strtod(arg, &end);
    const char *nonzero = strpbrk(arg, "123456789"), *expo = strpbrk(arg, "eE");
    if (end != arg && *end == '\0' && errno == ERANGE && v == 0.0 && nonzero && (!expo || nonzero < expo)) {
        /* a digit other than 0 before any exponent: not 0 */
        fprintf(stderr, "spikemesh %s: %s '%s': too close to 0 for a double; give 0 or a larger number\n", cmd, opt,
                arg);
        return -1;
    }
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

/* A network argument is a file when one exists at that path (or it looks like a path), else a built-in name. */
static int sm_network_is_nir(const char *spec)
{
    size_t n = strlen(spec);
    return n >= 4 && strcasecmp(spec + n - 4, ".nir") == 0;
}

int sm_cli_network_is_file(const char *spec)
{
    struct stat st;
    return stat(spec, &st) == 0 || strchr(spec, '/') || strstr(spec, ".json") || sm_network_is_nir(spec);
}

/* dt_ms: --dt (0: not given), which only a NIR graph takes (1 ms by default). */
int sm_cli_load_network(const char *spec, double dt_ms, sm_net_t *net, sm_errbuf_t *eb)
{
    if (sm_network_is_nir(spec))
        return sm_net_load_nir(spec, dt_ms > 0 ? dt_ms : 1.0, net, eb);
    memset(net, 0, sizeof *net);
    if (dt_ms > 0)
        return sm_errorf(eb, SM_EINVAL, "--dt applies to NIR graphs (.nir files); '%s' sets its own step (dt_ms)",
                         spec);
    if (sm_cli_network_is_file(spec))
        return sm_net_load(spec, net, eb);
    return sm_net_builtin(spec, net, eb);
}

int sm_cli_put_json(const char *cmd, json_t *o)
{
    char *txt = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!txt) {
        fprintf(stderr, "spikemesh %s: cannot write the JSON (out of memory?)\n", cmd);
        return SM_EXIT_BADINPUT;
    }
    puts(txt); /* a failed write is caught once, for every command, as main() ends */
    free(txt);
    return 0;
}

void sm_cli_network_error(const char *cmd, const char *network, const sm_errbuf_t *eb)
{
    if (sm_cli_network_is_file(network))
        fprintf(stderr, "spikemesh %s: %s: %s\n", cmd, network, eb->msg);
    else
        fprintf(stderr, "spikemesh %s: %s\n", cmd, eb->msg);
}
