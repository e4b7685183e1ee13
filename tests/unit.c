/* tests/unit.c: runs every CUnit suite; exits non-zero when any assertion failed. */
#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>

#include "spikemesh/runtime.h"
#include "tests/unit.h"

uint64_t sm_test_spike_digest(struct sm_sim *sim, uint64_t nsteps, uint64_t *count)
{
    uint64_t h = 1469598103934665603ull;
    *count = 0;
    for (uint64_t k = 0; k < nsteps; k++) {
        uint32_t n;
        sm_sim_step(sim);
        const uint32_t *ids = sm_sim_last_spikes(sim, &n);
        for (uint32_t i = 0; i < n; i++) {
            uint64_t w[2] = {k, ids[i]};
            const unsigned char *p = (const unsigned char *)w;
            for (size_t b = 0; b < sizeof w; b++)
                h = (h ^ p[b]) * 1099511628211ull;
        }
        *count += n;
    }
    return h;
}

double sm_test_relerr(double a, double b)
{
    double den = fabs(b) > 1e-300 ? fabs(b) : 1e-300;
    return fabs(a - b) / den;
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    if (sm_test_lif_register() || sm_test_router_register() || sm_test_loader_register() ||
        sm_test_sim_register() || sm_test_noc_register() ||
        sm_test_nir_register() || sm_test_compress_register() ||
        sm_test_eprop_register() || sm_test_fuzz_regress_register()) {
        fprintf(stderr, "cannot register the test suites: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    /* Read the counts before cleanup clears them. */
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (run == 0)
        return 1;
    return failed ? 1 : 0;
}
