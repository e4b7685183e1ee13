/* tests/fuzz/fuzz_network.c: libFuzzer harness for the network JSON parser (sm_net_parse): every input is parsed
 * from memory; a refusal must carry a message, a network that parses must keep the format's invariants, and a small
 * one is deployed on the "small" chip, where bad parameter combinations may show. Run by `make fuzz`. */
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sm_net_t net;
    sm_errbuf_t eb = {0};
    int rc = sm_net_parse((const char *)data, size, "fuzz.json", &net, &eb);
    if (rc) {
        fz_check_error(rc, &eb);
        FZ_CHECK(net.pops == NULL && net.projs == NULL && net.npops == 0, "a refused network keeps its arrays");
        return 0;
    }
    fz_check_net(&net);
    fz_deploy(&net, NULL);
    sm_net_free(&net);
    return 0;
}
