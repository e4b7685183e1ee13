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

int sm_test_fuzz_regress_register(void)
{
    CU_pSuite s = CU_add_suite("fuzz_regress", NULL, NULL);
    if (!s || !CU_add_test(s, "NIR files the fuzzer found: refused with a message, or loaded", test_nir_files))
        return 1;
    return 0;
}
