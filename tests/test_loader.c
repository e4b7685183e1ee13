/* tests/test_loader.c: network parsing with located errors, connectivity statistics and independence from the
 * chip, and partitioning that respects every per-core limit (checked by brute force). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "spikemesh/spikemesh.h"
#include "tests/unit.h"

static const char *const good_net =
    "{\n"
    "  \"name\": \"t\", \"dt_ms\": 0.5,\n"
    "  \"populations\": [\n"
    "    {\"name\": \"a\", \"size\": 30, \"model\": \"lif\", \"params\": {\"tau_m_ms\": 10}},\n"
    "    {\"name\": \"b\", \"size\": 30, \"v_init_mV\": [-70, -55]},\n"
    "    {\"name\": \"in\", \"size\": 5, \"model\": \"poisson\", \"params\": {\"rate_hz\": 10}}\n"
    "  ],\n"
    "  \"projections\": [\n"
    "    {\"pre\": \"a\", \"post\": \"a\", \"connect\": {\"rule\": \"all_to_all\", \"autapses\": false},\n"
    "     \"weight_mV\": 0.5},\n"
    "    {\"pre\": \"a\", \"post\": \"b\", \"connect\": {\"rule\": \"one_to_one\"}, \"delay_ms\": 2.0,\n"
    "     \"receptor\": \"inhibitory\", \"weight_mV\": -1},\n"
    "    {\"pre\": \"in\", \"post\": \"b\", \"connect\": {\"rule\": \"list\", \"pairs\": [[0, 3], [4, 29], [0, 3]],\n"
    "     \"weights_mV\": [1.5, 2.5, 3.5]}}\n"
    "  ]\n"
    "}\n";

/* sm_utf8_copy: hand-made cases, then random bytes, whose copies jansson (which validates UTF-8 on its own) must
 * take as strings. */
static void test_utf8_copy(void)
{
    static const struct {
        const char *in, *out;
        size_t size;
        int changed;
    } cases[] = {
        {"abc", "abc", 8, 0},
        {"caf\xc3\xa9", "caf\xc3\xa9", 8, 0},
        {"caf\xc3\xa9", "caf", 5, 1},            /* the two-byte character does not fit whole */
        {"caf\xe9", "caf?", 8, 1},                 /* Latin-1, not UTF-8 */
        {"\xc0\xaf", "??", 8, 1},                  /* overlong */
        {"\xed\xa0\x80", "???", 8, 1},             /* a surrogate */
        {"\xf0\x9f\x98\x80!", "\xf0\x9f\x98\x80!", 8, 0}, /* U+1F600 */
        {"\xf4\x90\x80\x80", "????", 8, 1},        /* past U+10FFFF */
        {"a\xe2\x82", "a??", 8, 1},                /* cut short */
        {"", "", 1, 0},
        {"x", "", 1, 1},
    };
    char buf[64];
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int changed = sm_utf8_copy(buf, cases[k].size, cases[k].in);
        CU_ASSERT_STRING_EQUAL(buf, cases[k].out);
        CU_ASSERT_EQUAL(changed, cases[k].changed);
    }
    uint64_t x = 88172645463325252ull;
    int bad = 0;
    for (int t = 0; t < 20000; t++) {
        char in[24];
        for (int i = 0; i < 23; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            in[i] = (char)(x % 255 + 1); /* no NUL inside */
        }
        in[23] = '\0';
        sm_utf8_copy(buf, 1 + (size_t)(x >> 59), in); /* sizes 1 to 32 */
        json_t *j = json_string(buf);
        bad |= !j;
        json_decref(j);
    }
    CU_ASSERT_FALSE(bad);
}

static void test_parse_good(void)
{
    sm_net_t net;
    sm_errbuf_t eb = {0};
    int rc = sm_net_parse(good_net, strlen(good_net), "good.json", &net, &eb);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(net.n, 65);
    CU_ASSERT_EQUAL(net.npops, 3);
    CU_ASSERT_EQUAL(net.pops[0].lif.tau_m, 10.0);
    CU_ASSERT_EQUAL(net.pops[0].lif.tau_e, 5.0); /* default */
    CU_ASSERT_EQUAL(net.pops[1].v_init_lo, -70.0);
    CU_ASSERT_EQUAL(net.pops[2].model, SM_MODEL_POISSON);
    CU_ASSERT_EQUAL(net.projs[1].delay_steps, 4);
    CU_ASSERT_EQUAL(net.projs[1].inhibitory, 1);

    sm_chip_t chip;
    sm_deploy_t d;
    CU_ASSERT_EQUAL_FATAL(sm_chip_preset("small", &chip), 0);
    CU_ASSERT_EQUAL_FATAL(sm_deploy_build(&net, &chip, 1, &d, &eb), 0);
    /* all_to_all without autapses: 30 * 29; one_to_one: 30; list: 3 */
    CU_ASSERT_EQUAL(d.nsyn, 30 * 29 + 30 + 3);
    for (uint32_t i = 0; i < 30; i++) {
        uint32_t self = 0, diag = 0;
        for (uint64_t s = d.row[i]; s < d.row[i + 1]; s++) {
            uint32_t post = SM_SYN_POST(d.syn[s].tgt);
            self += post == i;
            if (post == 30 + i) {
                diag++;
                CU_ASSERT_EQUAL(SM_SYN_DELAY(d.syn[s].tgt), 4);
                CU_ASSERT_EQUAL(SM_SYN_INH(d.syn[s].tgt), 1);
                CU_ASSERT_EQUAL(d.syn[s].w, -1.0f);
            }
        }
        CU_ASSERT_EQUAL(self, 0);
        CU_ASSERT_EQUAL(diag, 1);
    }
    /* the list: input 0 -> b[3] twice (1.5 and 3.5), input 4 -> b[29] (2.5) */
    uint32_t in0 = 60, in4 = 64;
    CU_ASSERT_EQUAL(d.row[in0 + 1] - d.row[in0], 2);
    CU_ASSERT_EQUAL(SM_SYN_POST(d.syn[d.row[in0]].tgt), 33);
    CU_ASSERT_EQUAL(d.syn[d.row[in0]].w + d.syn[d.row[in0] + 1].w, 5.0f);
    CU_ASSERT_EQUAL(d.row[in4 + 1] - d.row[in4], 1);
    CU_ASSERT_EQUAL(SM_SYN_POST(d.syn[d.row[in4]].tgt), 59);
    CU_ASSERT_EQUAL(d.syn[d.row[in4]].w, 2.5f);
    sm_deploy_free(&d);
    sm_net_free(&net);
}

/* Errors name the file, the line and column of the offending value, and the rule. The expected positions
 * were counted independently of the loader: the 1-based column of the value's first character. */
static void expect_error(const char *text, const char *where, const char *rule)
{
    sm_net_t net;
    sm_errbuf_t eb = {0};
    int rc = sm_net_parse(text, strlen(text), "net.json", &net, &eb);
    CU_ASSERT(rc < 0);
    if (rc >= 0) {
        sm_net_free(&net);
        return;
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, where));
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, rule));
    if (!strstr(eb.msg, where) || !strstr(eb.msg, rule))
        fprintf(stderr, "\n    message was: %s\n", eb.msg);
}

static void test_parse_errors(void)
{
    expect_error("{\"populations\": [{\"name\": \"a\", \"size\": 10,\n   \"params\": {\"tau_m_ms\": -3}}]}",
                 "net.json:2:27:", "must be positive");
    expect_error("{\"populations\": [\n {\"name\": \"a\", \"size\": 0}]}", "net.json:2:24:", "at least 1");
    expect_error("{\"populations\": [{\"name\": \"a\", \"size\": 10}],\n \"projections\": [{\"pre\": \"a\", "
                 "\"post\": \"zz\", \"connect\": {\"rule\": \"all_to_all\"}}]}",
                 "net.json:2:39:", "unknown population \"zz\"");
    expect_error("{\"populations\": [{\"name\": \"a\", \"size\": 10}],\n \"projections\": [{\"pre\": \"a\", "
                 "\"post\": \"a\",\n   \"connect\": {\"rule\": \"bernoulli\", \"p\": 1.5}}]}",
                 "net.json:3:42:", "outside [0, 1]");
    expect_error("{\"populations\": [{\"name\": \"a\", \"size\": 10, \"model\": \"hh\"}]}", "net.json:1:53:",
                 "unknown model \"hh\"");
    expect_error("{\"populations\": [{\"name\": \"a\", \"size\": 10, \"params\": {\"tau_x\": 1}}]}",
                 "net.json:1:64:", "unknown field \"tau_x\"");
    expect_error("{\"populations\": [{\"name\": \"a\", \"size\": \"10\"}]}", "net.json:1:40:", "whole number");
    expect_error("{\"populations\": [{\"name\": \"a\", \"size\": 10}", "net.json:1:", "malformed JSON");
    expect_error("{\"populations\": [{\"name\": \"a\", \"size\": 10}],\n \"projections\": [{\"pre\": \"a\", "
                 "\"post\": \"a\", \"delay_ms\": 0,\n   \"connect\": {\"rule\": \"all_to_all\"}}]}",
                 "net.json:2:56:", "below the minimum of 1 step");
}

/* Bernoulli connectivity: the synapse count is within 5 sigma of p * N^2; connectivity is the same whatever
 * the chip (it is keyed by seed and ids); another seed gives other synapses. */
static void test_connectivity(void)
{
    sm_net_t net;
    sm_chip_t c1, c2;
    sm_deploy_t d1, d2, d3;
    sm_errbuf_t eb;
    CU_ASSERT_EQUAL_FATAL(sm_net_builtin("cuba:2000", &net, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_chip_resolve("loihi", &c1, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_chip_resolve("small:12x12", &c2, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_deploy_build(&net, &c1, 42, &d1, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_deploy_build(&net, &c2, 42, &d2, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_deploy_build(&net, &c1, 43, &d3, &eb), 0);
    double p = 0.04, mean = p * 2000.0 * 2000.0, sd = sqrt(mean * (1 - p));
    CU_ASSERT(fabs((double)d1.nsyn - mean) < 5 * sd);
    CU_ASSERT_EQUAL_FATAL(d1.nsyn, d2.nsyn);
    CU_ASSERT_EQUAL(memcmp(d1.row, d2.row, (d1.n + 1) * sizeof *d1.row), 0);
    CU_ASSERT_EQUAL(memcmp(d1.syn, d2.syn, d1.nsyn * sizeof *d1.syn), 0);
    CU_ASSERT_NOT_EQUAL(d1.ncores, d2.ncores); /* another placement */
    CU_ASSERT(d3.nsyn != d1.nsyn || memcmp(d1.syn, d3.syn, d1.nsyn * sizeof *d1.syn) != 0);
    /* Out-degree of an excitatory neuron: Binomial(2000, p), mean 80: the sample mean over 1600 neurons is
     * within 5 standard errors. */
    double sum = 0;
    for (uint32_t i = 0; i < 1600; i++)
        sum += (double)(d1.row[i + 1] - d1.row[i]);
    CU_ASSERT(fabs(sum / 1600 - 80.0) < 5 * sqrt(80.0 * (1 - p) / 1600));
    /* weights and receptors follow the projection */
    for (uint32_t i = 0; i < 2000; i += 197)
        for (uint64_t s = d1.row[i]; s < d1.row[i + 1]; s++) {
            CU_ASSERT_EQUAL(SM_SYN_INH(d1.syn[s].tgt), i >= 1600);
            CU_ASSERT_EQUAL(d1.syn[s].w, i >= 1600 ? -9.0f : 1.62f);
        }
    sm_deploy_free(&d1);
    sm_deploy_free(&d2);
    sm_deploy_free(&d3);
    sm_net_free(&net);
}

/* Every core respects the chip's limits on neurons, synapse memory and fan-in (recounted here from the
 * synapses); cores tile the neurons in order without gaps. */
static void check_limits(const char *netspec, const char *chipspec)
{
    sm_net_t net;
    sm_chip_t chip;
    sm_deploy_t d;
    sm_errbuf_t eb;
    CU_ASSERT_EQUAL_FATAL(sm_net_builtin(netspec, &net, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_chip_resolve(chipspec, &chip, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_deploy_build(&net, &chip, 5, &d, &eb), 0);
    uint32_t next = 0;
    uint8_t *seen = malloc(d.n);
    for (uint32_t c = 0; c < d.ncores; c++) {
        const sm_core_t *co = &d.cores[c];
        CU_ASSERT_EQUAL(co->first, next);
        next += co->count;
        CU_ASSERT(co->count >= 1 && co->count <= chip.max_neurons);
        uint64_t nsyn = 0;
        uint32_t fan_in = 0;
        memset(seen, 0, d.n);
        for (uint32_t i = 0; i < d.n; i++)
            for (uint64_t s = d.row[i]; s < d.row[i + 1]; s++) {
                uint32_t post = SM_SYN_POST(d.syn[s].tgt);
                if (post >= co->first && post < co->first + co->count) {
                    nsyn++;
                    if (!seen[i]) {
                        seen[i] = 1;
                        fan_in++;
                    }
                }
            }
        CU_ASSERT_EQUAL(nsyn, co->synapses);
        CU_ASSERT_EQUAL(fan_in, co->fan_in);
        CU_ASSERT(nsyn * chip.synapse_bytes <= chip.synapse_memory);
        CU_ASSERT(fan_in <= chip.max_fan_in);
        CU_ASSERT_EQUAL(co->tile * chip.cores_per_tile + co->slot, c);
    }
    CU_ASSERT_EQUAL(next, d.n);
    free(seen);
    sm_deploy_free(&d);
    sm_net_free(&net);
}

static void test_partition_limits(void)
{
    check_limits("cuba:4000", "loihi");   /* memory-bound cores */
    check_limits("cuba:3000", "small:12x12"); /* fan-in-bound cores */
    check_limits("cuba:100", "small");    /* neuron-bound: 100 neurons, 80 synapses each */
}

static void test_does_not_fit(void)
{
    sm_net_t net;
    sm_chip_t chip;
    sm_deploy_t d;
    sm_errbuf_t eb = {0};
    CU_ASSERT_EQUAL_FATAL(sm_net_builtin("cuba:4000", &net, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_chip_resolve("small", &chip, &eb), 0);
    CU_ASSERT_EQUAL(sm_deploy_build(&net, &chip, 1, &d, &eb), SM_ENOFIT);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "does not fit chip 'small'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "more than the 8 cores"));
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "--chip small:"));
    sm_net_free(&net);
}

static void test_presets(void)
{
    sm_chip_t c;
    sm_errbuf_t eb;
    CU_ASSERT_EQUAL(sm_chip_resolve("loihi", &c, &eb), 0);
    CU_ASSERT_EQUAL(c.width * c.height * c.cores_per_tile, 128);
    CU_ASSERT_EQUAL(c.max_neurons, 1024);
    CU_ASSERT_EQUAL(c.synapse_memory, 131072);
    CU_ASSERT_EQUAL(c.max_fan_in, 4096);
    CU_ASSERT_EQUAL(c.table_entries, 1024);
    CU_ASSERT_EQUAL(sm_chip_resolve("loihi:16x8", &c, &eb), 0);
    CU_ASSERT_EQUAL(c.width, 16);
    CU_ASSERT_EQUAL(c.height, 8);
    CU_ASSERT_EQUAL(sm_chip_resolve("small", &c, &eb), 0);
    CU_ASSERT_EQUAL(c.width * c.height * c.cores_per_tile, 8);
    CU_ASSERT_EQUAL(c.max_neurons, 256);
    CU_ASSERT(sm_chip_resolve("loihi:0x4", &c, &eb) < 0);
    CU_ASSERT(sm_chip_resolve("nosuch", &c, &eb) < 0);
}

/* Placers: every core on its own slot of the chip, limits kept (the partition is the same), and on a modular
 * network greedy and bisection placements cost fewer packets x hops than cores in order. */
static void test_placers(void)
{
    sm_net_t net;
    sm_chip_t chip;
    sm_errbuf_t eb;
    CU_ASSERT_EQUAL_FATAL(sm_net_builtin("cluster:24000", &net, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_chip_resolve("loihi:10x10", &chip, &eb), 0);
    double est[3] = {0};
    uint64_t hops[3] = {0};
    uint32_t ncores[3] = {0};
    for (int pl = 0; pl < 3; pl++) {
        sm_deploy_t d;
        sm_deploy_opts_t o = {.placer = (sm_placer_t)pl, .estimate = 1};
        CU_ASSERT_EQUAL_FATAL(sm_deploy_build_ex(&net, &chip, 3, &o, &d, &eb), 0);
        uint32_t total = chip.width * chip.height * chip.cores_per_tile;
        uint8_t *used = calloc(total, 1);
        uint32_t clash = 0;
        for (uint32_t c = 0; c < d.ncores; c++) {
            uint32_t phys = d.cores[c].tile * chip.cores_per_tile + d.cores[c].slot;
            CU_ASSERT(d.cores[c].tile < chip.width * chip.height && d.cores[c].slot < chip.cores_per_tile);
            clash += used[phys]++;
            CU_ASSERT(d.cores[c].fan_out <= chip.max_fan_out);
        }
        CU_ASSERT_EQUAL(clash, 0);
        free(used);
        est[pl] = d.est_hops;
        ncores[pl] = d.ncores;
        for (uint32_t q = 0; q < d.npieces; q++)
            hops[pl] += (uint64_t)d.pieces[q].hops * d.pieces[q].count;
        sm_deploy_free(&d);
    }
    CU_ASSERT_EQUAL(ncores[0], ncores[1]);
    CU_ASSERT_EQUAL(ncores[0], ncores[2]);
    CU_ASSERT(est[1] < 0.9 * est[0]);
    CU_ASSERT(est[2] < 0.9 * est[0]);
    CU_ASSERT(hops[1] < hops[0]);
    CU_ASSERT(hops[2] < hops[0]);
    sm_net_free(&net);
}

/* The blocks rule: own-block and next-block connection counts within five standard deviations of their
 * expectation, nothing elsewhere when p_out is 0. */
static void test_blocks_rule(void)
{
    sm_net_t net;
    sm_chip_t chip;
    sm_deploy_t d;
    sm_errbuf_t eb;
    CU_ASSERT_EQUAL_FATAL(sm_net_builtin("cluster:20000", &net, &eb), 0); /* 5 modules of 4000 */
    CU_ASSERT_EQUAL_FATAL(sm_chip_resolve("loihi:12x12", &chip, &eb), 0);
    CU_ASSERT_EQUAL_FATAL(sm_deploy_build(&net, &chip, 4, &d, &eb), 0);
    double own = 0, next = 0, other = 0;
    for (uint32_t i = 0; i < 16000; i += 7) { /* excitatory neurons */
        uint32_t blk = i / 3200;
        for (uint64_t s = d.row[i]; s < d.row[i + 1]; s++) {
            uint32_t post = SM_SYN_POST(d.syn[s].tgt);
            uint32_t pb = post < 16000 ? post / 3200 : (post - 16000) / 800;
            if (pb == blk)
                own++;
            else if (pb == (blk + 1) % 5)
                next++;
            else
                other++;
        }
    }
    double n = 16000 / 7 + 1, e_own = 72.0 * n, e_next = 8.0 * n;
    CU_ASSERT(fabs(own - e_own) < 5 * sqrt(e_own));
    CU_ASSERT(fabs(next - e_next) < 5 * sqrt(e_next));
    CU_ASSERT_EQUAL(other, 0);
    sm_deploy_free(&d);
    sm_net_free(&net);
}

int sm_test_loader_register(void)
{
    CU_pSuite s = CU_add_suite("loader", NULL, NULL);
    if (!s || !CU_add_test(s, "parse a network with every rule", test_parse_good) ||
        !CU_add_test(s, "names copied as valid UTF-8 (sm_utf8_copy)", test_utf8_copy) ||
        !CU_add_test(s, "errors located as file:line:column", test_parse_errors) ||
        !CU_add_test(s, "connectivity statistics and chip independence", test_connectivity) ||
        !CU_add_test(s, "partition respects per-core limits", test_partition_limits) ||
        !CU_add_test(s, "does not fit: limit and suggestion", test_does_not_fit) ||
        !CU_add_test(s, "chip presets", test_presets) || !CU_add_test(s, "placers", test_placers) ||
        !CU_add_test(s, "blocks connection rule", test_blocks_rule))
        return -1;
    return 0;
}
