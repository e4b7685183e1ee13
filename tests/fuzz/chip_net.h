/* tests/fuzz/chip_net.h: the network the chip fuzzer (fuzz_chip.c) deploys on every chip that parses, shared
 * with the replay of the chips it found (tests/test_fuzz_regress.c). */
#ifndef SPIKEMESH_TESTS_FUZZ_CHIP_NET_H
#define SPIKEMESH_TESTS_FUZZ_CHIP_NET_H

/* The network deployed on every chip that parses: a source, a recurrent lif population, delays of 1 and 3 steps. */
static const char fz_net[] =
    "{\"dt_ms\": 0.5, \"populations\": ["
    "{\"name\": \"in\", \"size\": 40, \"model\": \"poisson\", \"params\": {\"rate_hz\": 20}},"
    "{\"name\": \"e\", \"size\": 240}, {\"name\": \"i\", \"size\": 60}],"
    "\"projections\": ["
    "{\"pre\": \"in\", \"post\": \"e\", \"weight_mV\": 2, \"connect\": {\"rule\": \"list\", "
    "\"pairs\": [[0, 0], [1, 7], [39, 239]]}},"
    "{\"pre\": \"e\", \"post\": \"e\", \"weight_mV\": 0.5, \"delay_ms\": 1.5, "
    "\"connect\": {\"rule\": \"bernoulli\", \"p\": 0.1}},"
    "{\"pre\": \"e\", \"post\": \"i\", \"weight_mV\": 1, \"connect\": {\"rule\": \"all_to_all\"}},"
    "{\"pre\": \"i\", \"post\": \"e\", \"receptor\": \"inh\", \"weight_mV\": -3, "
    "\"connect\": {\"rule\": \"bernoulli\", \"p\": 0.2}}]}";

#endif
