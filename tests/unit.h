/* tests/unit.h: the CUnit suites of spikemesh, one registration function per module. */
#ifndef SPIKEMESH_TESTS_UNIT_H
#define SPIKEMESH_TESTS_UNIT_H

#include <CUnit/CUnit.h>

int sm_test_lif_register(void);
int sm_test_router_register(void);
int sm_test_loader_register(void);
int sm_test_sim_register(void);
int sm_test_noc_register(void);
int sm_test_nir_register(void);
int sm_test_compress_register(void);
int sm_test_eprop_register(void);
int sm_test_fuzz_regress_register(void);

/* Relative error |a - b| / max(|b|, tiny). */
double sm_test_relerr(double a, double b);

#endif
