/* tests/fuzz/fuzz_chip.c: libFuzzer harness for the chip JSON parser (sm_chip_parse, which sm_chip_load reads files
 * for): a refusal must carry a message, a chip that parses must keep the format's ranges, and a small chip is given
 * a small fixed network to deploy, where bad combinations of limits may show. Run by `make fuzz`. */
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "tests/fuzz/chip_net.h"

/* Chips with more cores than this are parsed but not deployed on (a 4096 x 1024 mesh would take seconds). */
#define FZ_DEPLOY_MAX_CORES 4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sm_chip_t chip;
    sm_errbuf_t eb = {0};
    int rc = sm_chip_parse((const char *)data, size, "fuzz.json", &chip, &eb);
    if (rc) {
        fz_check_error(rc, &eb);
        return 0;
    }
    FZ_CHECK(memchr(chip.name, '\0', sizeof chip.name) != NULL, "chip name not terminated");
    FZ_CHECK(chip.width >= 1 && chip.height >= 1 && (uint64_t)chip.width * chip.height <= (1u << 22), "mesh %ux%u",
             chip.width, chip.height);
    FZ_CHECK(chip.cores_per_tile >= 1 && chip.cores_per_tile <= SM_TILE_MAX_CORES, "cores per tile %u",
             chip.cores_per_tile);
    FZ_CHECK(chip.max_neurons >= 1 && chip.synapse_bytes >= 1 && chip.max_fan_in >= 1 && chip.max_fan_out >= 1 &&
                 chip.table_entries >= 1,
             "a per-core limit is 0");
    FZ_CHECK(chip.max_delay_steps >= 1 && chip.max_delay_steps <= SM_SYN_MAX_DELAY, "max delay %u",
             chip.max_delay_steps);
    FZ_CHECK(chip.costs.cycle_ns > 0 && isfinite(chip.costs.cycle_ns), "cycle %g ns", chip.costs.cycle_ns);
    if ((uint64_t)chip.width * chip.height * chip.cores_per_tile > FZ_DEPLOY_MAX_CORES)
        return 0;
    sm_net_t net;
    FZ_CHECK(sm_net_parse(fz_net, sizeof fz_net - 1, "fixed.json", &net, &eb) == 0, "fixed.json: %s", eb.msg);
    fz_deploy(&net, &chip);
    sm_net_free(&net);
    return 0;
}
