/* tests/test_fuzz_regress.c: every input with which the fuzzers of tests/fuzz/ (`make fuzz`) made a loader crash,
 * hang, leak or misbehave, fed to the same entry point: each must now be refused with its message, or load. JSON
 * inputs are written out here; NIR files are read from tests/fuzz/regress/ under SRCDIR. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spikemesh/spikemesh.h"
#include "tests/unit.h"

/* ---- NIR files (tests/fuzz/regress/NAME.nir) ---- */

static const char *regress_path(char *buf, size_t cap, const char *name)
{
    const char *src = getenv("SRCDIR");
    snprintf(buf, cap, "%s/tests/fuzz/regress/%s", src ? src : ".", name);
    return buf;
}

typedef struct {
    const char *file;
    int rc;           /* expected return code */
    const char *msg;  /* rc != 0: a part of the message */
    uint32_t npops, n, nprojs; /* rc == 0: the network */
} nir_case_t;

static const nir_case_t nir_cases[] = {
    /* Fixed-length UTF-8 strings (types and edges) were read into an ASCII memory type, which HDF5 cannot
     * convert: the file was refused with "no appropriate function for conversion path". */
    {"fixed_utf8.nir", 0, NULL, 2, 4, 1},
    /* A graph that makes no synapse called qsort with a null array (undefined behaviour). */
    {"no_edges.nir", 0, NULL, 1, 1, 0},
    /* Nested graphs linked twice (hard links to one group, 12 deep) flattened to 2^12 copies of their nodes; 32
     * deep did not finish. */
    {"shared_groups.nir", SM_EPARSE, "is the same HDF5 group as", 0, 0, 0},
};

static void test_nir_files(void)
{
    for (size_t k = 0; k < sizeof nir_cases / sizeof nir_cases[0]; k++) {
        const nir_case_t *c = &nir_cases[k];
        char path[1024];
        sm_net_t net;
        sm_errbuf_t eb = {0};
        int rc = sm_net_load_nir(regress_path(path, sizeof path, c->file), 1.0, &net, &eb);
        if (rc != c->rc)
            printf("\n    %s: rc %d (expected %d): %s\n    ", c->file, rc, c->rc, eb.msg);
        CU_ASSERT_EQUAL(rc, c->rc);
        if (rc == 0) {
            CU_ASSERT_EQUAL(net.npops, c->npops);
            CU_ASSERT_EQUAL(net.n, c->n);
            CU_ASSERT_EQUAL(net.nprojs, c->nprojs);
            sm_net_free(&net);
        } else {
            CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, c->msg));
            CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, c->file));
            CU_ASSERT_PTR_NULL(net.pops);
        }
    }
}

/* ---- chip files, with the network tests/fuzz/fuzz_chip.c deploys on them ---- */

#include "tests/fuzz/chip_net.h"

/* A chip of 2 cores with a fan-out of 100: every e neuron sends to all 60 of i, so with 2 neurons a core an e core
 * reaches 2 x (30 + ~22) > 100 (neuron, core) pairs and cores shrink to 1 neuron: 340 cores. The partition
 * used to stop at the first round's 4 cores, and the mesh suggested for those was tried with a nested trial
 * deployment at every size up a growing ladder: seconds (a fuzzer timeout under ASan). */
static void test_chip_fanout_suggestion(void)
{
    static const char chip_json[] =
        "{\"name\":\"full\",\"mesh\":{\"width\":1,\"height\":1},\"cores_per_tile\":2,\"core\":{\"max_neurons\":201,"
        "\"synapse_memory_bytes\":16384,\"synapse_bytes\":2,\"max_fan_out\":100,\"max_delay_steps\":4},\"router\":"
        "{\"table_entries\":68,\"model\":\"ideal\",\"buffer_depth\":8,\"packet_flits\":20}}";
    sm_chip_t chip;
    sm_net_t net;
    sm_deploy_t d;
    sm_errbuf_t eb = {0};
    CU_ASSERT_EQUAL_FATAL(sm_chip_parse(chip_json, sizeof chip_json - 1, "chip.json", &chip, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_net_parse(fz_net, sizeof fz_net - 1, "net.json", &net, &eb), 0);
    int rc = sm_deploy_build(&net, &chip, 1, &d, &eb);
    CU_ASSERT_EQUAL(rc, SM_ENOFIT);
    if (rc == 0)
        sm_deploy_free(&d);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "needs at least 340 cores"));
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "cores fill up on fan-out"));
    /* On the 2 x 170 tiles it asks for, the same network deploys (the tables of 68 entries are what it says). */
    chip.width = 1;
    chip.height = 170;
    chip.table_entries = 1u << 16;
    rc = sm_deploy_build(&net, &chip, 1, &d, &eb);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc == 0) {
        CU_ASSERT_EQUAL(d.ncores, 340);
        sm_deploy_free(&d);
    } else {
        printf("\n    %s\n    ", eb.msg);
    }
    sm_net_free(&net);
}

int sm_test_fuzz_regress_register(void)
{
    CU_pSuite s = CU_add_suite("fuzz_regress", NULL, NULL);
    if (!s || !CU_add_test(s, "NIR files the fuzzer found: refused with a message, or loaded", test_nir_files) ||
        !CU_add_test(s, "a chip the chip fuzzer found: cores counted after fan-out, one trial", test_chip_fanout_suggestion))
        return 1;
    return 0;
}
