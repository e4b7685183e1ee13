/* tools/cli.h: helpers shared by the spikemesh subcommands (option values, the subcommands themselves). */
#ifndef SPIKEMESH_TOOLS_CLI_H
#define SPIKEMESH_TOOLS_CLI_H

#include <stdint.h>

#include "spikemesh/loader.h"

#define SM_EXIT_BADINPUT 2
#define SM_EXIT_INTERRUPTED 130

/* A finite, non-negative decimal number; on error prints "spikemesh CMD: OPT 'ARG': rule" and returns -1. */
int sm_cli_double(const char *cmd, const char *opt, const char *arg, double *out);
/* A whole number of decimal digits below 2^64; the same on error. */
int sm_cli_u64(const char *cmd, const char *opt, const char *arg, uint64_t *out);
/* Whether an output file can be written to path (map's placement, traffic's histogram): not a directory, and
 * path.part (written first, then renamed) can be created. 0, or -1 with errno set. */
int sm_cli_check_writable(const char *path);

struct json_t;
/* --json of info, map, traffic and train: prints o compactly, in insertion order, on one line of stdout and
 * releases it. Returns 0, or 2 (the exit status, docs/outputs.md) when it cannot make the text (o NULL, out of
 * memory), said on stderr. A failed write to stdout is caught by main() for every command. */
int sm_cli_put_json(const char *cmd, struct json_t *o);

/* NETWORK argument of run, info and map: a NIR graph (.nir, with step dt_ms, default 1 ms), a network JSON file
 * (a path that exists, contains '/' or ends in .json) or a built-in name. */
int sm_cli_load_network(const char *spec, double dt_ms, sm_net_t *net, sm_errbuf_t *eb);
/* 1 when a NETWORK argument names a file (as opposed to a built-in network). */
int sm_cli_network_is_file(const char *spec);
/* Prints a command's error about the network: "spikemesh CMD: MSG", with the network's file name first when it
 * is a file. */
void sm_cli_network_error(const char *cmd, const char *network, const sm_errbuf_t *eb);

/* spikemesh map: partition, place, route; writes the placement (tools/map.c). */
int sm_cmd_map(int argc, char **argv);

/* spikemesh traffic: synthetic traffic on the cycle-level mesh (tools/traffic.c). */
int sm_cmd_traffic(int argc, char **argv);

/* spikemesh train: e-prop training on a built-in task or a task JSON file (tools/train.c). */
int sm_cmd_train(int argc, char **argv);

#endif
