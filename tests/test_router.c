#include "tests/unit.h"
int sm_test_router_register(void) { return 0; }
