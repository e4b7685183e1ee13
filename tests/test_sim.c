#include "tests/unit.h"
int sm_test_sim_register(void) { return 0; }
