/* tests/unit.h: the CUnit suites of spikemesh, one registration function per module. */
#ifndef SPIKEMESH_TESTS_UNIT_H
#define SPIKEMESH_TESTS_UNIT_H

#include <CUnit/CUnit.h>
#include <stdint.h>

int sm_test_lif_register(void);
int sm_test_router_register(void);
int sm_test_loader_register(void);
int sm_test_sim_register(void);
int sm_test_noc_register(void);
int sm_test_nir_register(void);
int sm_test_compress_register(void);
int sm_test_eprop_register(void);
int sm_test_fuzz_regress_register(void);

struct sm_sim;
/* Steps sim nsteps times and returns an FNV-1a digest of every (step, neuron) spike; *count gets their number. */
uint64_t sm_test_spike_digest(struct sm_sim *sim, uint64_t nsteps, uint64_t *count);

/* Relative error |a - b| / max(|b|, tiny). */
double sm_test_relerr(double a, double b);

#endif
