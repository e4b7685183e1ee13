#include "tests/unit.h"
int sm_test_lif_register(void) { return 0; }
