/* tests/fuzz/fuzz_input.c: libFuzzer harness for the spike input reader (sm_net_load_input, "step,neuron" CSV): the
 * input is read for a fixed network of two spike_source populations (3 and 5 neurons) around a lif one; a refusal
 * must carry a message and leave the network as it was, spikes that load must be in range and in order. Run by
 * `make fuzz`. */
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t sizes[] = {3, 4, 5};
    sm_pop_t pops[3];
    sm_net_t net;
    char path[64];
    memset(&net, 0, sizeof net);
    memset(pops, 0, sizeof pops);
    snprintf(net.name, sizeof net.name, "fixed");
    net.dt = 1.0;
    net.npops = 3;
    net.pops = pops;
    for (uint32_t p = 0; p < 3; p++) {
        snprintf(pops[p].name, sizeof pops[p].name, "p%u", p);
        pops[p].size = sizes[p];
        pops[p].first = net.n;
        pops[p].model = p == 1 ? SM_MODEL_LIF : SM_MODEL_SPIKE_SOURCE;
        pops[p].lif.tau_m = pops[p].lif.tau_e = pops[p].lif.tau_i = 10.0;
        pops[p].lif.v_reset = -1.0;
        net.n += sizes[p];
    }
    if (fz_write_temp(data, size, path, "csv") != 0) {
        perror("fuzz_input: temporary file");
        abort();
    }
    sm_errbuf_t eb = {0};
    int rc = sm_net_load_input(&net, path, &eb);
    if (rc == 0) {
        /* a second file replaces the spikes of the first */
        rc = sm_net_load_input(&net, path, &eb);
        FZ_CHECK(rc == 0, "the same file was refused the second time: %s", eb.msg);
    }
    unlink(path);
    if (rc) {
        fz_check_error(rc, &eb);
        for (uint32_t p = 0; p < 3; p++)
            FZ_CHECK(pops[p].spikes == NULL && pops[p].nspikes == 0, "a refused file changed population %u", p);
        return 0;
    }
    FZ_CHECK(pops[1].spikes == NULL, "the lif population got spikes");
    fz_check_net(&net);
    for (uint32_t p = 0; p < 3; p += 2) {
        for (uint64_t k = 1; k < pops[p].nspikes; k++)
            FZ_CHECK(pops[p].spikes[k - 1].step < pops[p].spikes[k].step ||
                         (pops[p].spikes[k - 1].step == pops[p].spikes[k].step &&
                          pops[p].spikes[k - 1].neuron < pops[p].spikes[k].neuron),
                     "population %u: spikes %llu and %llu out of order or twice", p, (unsigned long long)k - 1,
                     (unsigned long long)k);
        free(pops[p].spikes);
    }
    return 0;
}
