/* tools/cli.h: helpers shared by the spikemesh subcommands (option values, the subcommands themselves). */
#ifndef SPIKEMESH_TOOLS_CLI_H
#define SPIKEMESH_TOOLS_CLI_H

#include <stdint.h>

#define SM_EXIT_BADINPUT 2
#define SM_EXIT_INTERRUPTED 130

/* A finite, non-negative decimal number; on error prints "spikemesh CMD: OPT 'ARG': rule" and returns -1. */
int sm_cli_double(const char *cmd, const char *opt, const char *arg, double *out);
/* A whole number of decimal digits below 2^64; the same on error. */
int sm_cli_u64(const char *cmd, const char *opt, const char *arg, uint64_t *out);

/* spikemesh traffic: synthetic traffic on the cycle-level mesh (tools/traffic.c). */
int sm_cmd_traffic(int argc, char **argv);

#endif
