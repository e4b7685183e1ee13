#include "tests/unit.h"
int sm_test_loader_register(void) { return 0; }
