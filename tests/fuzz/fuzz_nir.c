/* tests/fuzz/fuzz_nir.c: libFuzzer harness for the NIR importer (sm_net_load_nir). An input is a text description of
 * a graph that the harness writes as HDF5 first, so that mutations change nodes, parameters, links and edges rather
 * than HDF5's own structures:
 *
 *   v VERSION            /version (a string)
 *   g NAME               a nested graph node in the current graph; it becomes the current graph
 *   end                  back to the enclosing graph (open graphs are closed at the end of the input)
 *   n NAME [TYPE]        a node group (with its type string unless TYPE is left out); it takes the datasets below
 *   f|F NAME V...        float64 | float32 dataset of rank 1 (in the current node, or the graph when none)
 *   m|M NAME R C V...    float64 | float32 R x C matrix (values repeated cyclically to fill it)
 *   r NAME A B C V...    float64 array of rank 3
 *   i NAME V...          int64 dataset of rank 1
 *   s|t NAME TEXT        variable-length | fixed-length string
 *   e SRC DST            an edge of the current graph
 *   l|L NAME TARGET      a hard | soft link NAME in the current graph's nodes/ to the absolute path TARGET
 *   fixed | noedges      the current graph's edges as fixed-length strings | no edges dataset at all
 *
 * An input that starts with the HDF5 signature (such as the real NIR files in the corpus) is a NIR file as it is, but
 * it is imported only with FUZZ_NIR_RAW set in the environment: mutated HDF5 files mostly exercise libhdf5's own
 * parser, and libhdf5 1.10 is not safe on damaged files (a global heap object of a damaged size makes H5HG_read copy
 * past its buffer, a damaged string length makes it allocate and zero up to 4 GiB), which the importer cannot
 * prevent. The file is imported with a step chosen by the input's length (FUZZ_SAVE_NIR=PATH in the environment keeps
 * the HDF5 file written from a description there). A refusal must carry a message, a network that imports must keep
 * the format's invariants and is deployed when small, and no HDF5 object may stay open after the import returns. Run
 * by `make fuzz`. */
#include <hdf5.h>

#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__asan_default_options(void);
const char *__lsan_default_suppressions(void);

/* Allocations above 512 MiB fail (as on a machine with little memory), so that a size a file claims is refused
 * instead of taking the harness past its memory limit. */
const char *__asan_default_options(void)
{
    return "max_allocation_size_mb=512:allocator_may_return_null=1";
}

/* With FUZZ_NIR_RAW, leaks allocated inside libhdf5 are not reported: HDF5 1.10 loses a few hundred bytes of its own
 * on some damaged files. The importer's own allocations still are, and the HDF5 objects it opens must all be closed
 * (checked after every input below). */
const char *__lsan_default_suppressions(void)
{
    return getenv("FUZZ_NIR_RAW") ? "leak:libhdf5\n" : "";
}

static int fz_raw; /* FUZZ_NIR_RAW: import HDF5 inputs as they are */

/* HDF5 keeps the blocks it frees (up to 16 MiB) for reuse, instead of allocating and zeroing its 1 MiB
 * type-conversion buffer again for every read: five times as many inputs a second. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_raw = getenv("FUZZ_NIR_RAW") != NULL;
    H5set_free_list_limits(-1, -1, -1, -1, 1 << 24, 1 << 23);
    return 0;
}

#define FZ_MAX_GRAPHS 40
#define FZ_MAX_VALUES 4096
#define FZ_MAX_TOKENS (FZ_MAX_VALUES + 8)

typedef struct {
    hid_t g;      /* the graph's group */
    hid_t nodes;  /* its nodes/ group */
    char **edges; /* 2 * ne names */
    size_t ne, cap;
    int fixed, noedges;
} fz_graph_t;

static hid_t fz_strtype(int fixed, size_t len)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, fixed ? (len ? len : 1) : H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

/* Transfers with a small type-conversion buffer: HDF5's default of 1 MiB, zeroed on every write, would take most of
 * the time of an input. */
static hid_t fz_dxpl = -1;

static void fz_str(hid_t loc, const char *name, const char *value, int fixed)
{
    size_t len = strlen(value);
    hid_t t = fz_strtype(fixed, len), sp = H5Screate(H5S_SCALAR);
    hid_t d = H5Dcreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d >= 0) {
        H5Dwrite(d, t, H5S_ALL, H5S_ALL, fz_dxpl, fixed ? (const void *)value : (const void *)&value);
        H5Dclose(d);
    }
    H5Sclose(sp);
    H5Tclose(t);
}

static void fz_num(hid_t loc, const char *name, hid_t ftype, hid_t mtype, const void *v, int rank,
                   const hsize_t *dims)
{
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d >= 0) {
        H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, fz_dxpl, v);
        H5Dclose(d);
    }
    H5Sclose(sp);
}

static void fz_close_graph(fz_graph_t *gr)
{
    if (!gr->noedges) {
        hsize_t dims[2] = {gr->ne, 2};
        size_t width = 1;
        for (size_t i = 0; i < 2 * gr->ne; i++)
            if (strlen(gr->edges[i]) + 1 > width)
                width = strlen(gr->edges[i]) + 1;
        hid_t t = fz_strtype(gr->fixed, width), sp = H5Screate_simple(2, dims, NULL);
        hid_t d = H5Dcreate2(gr->g, "edges", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (d >= 0 && gr->ne > 0) {
            if (gr->fixed) {
                char *buf = calloc(2 * gr->ne, width);
                if (buf) {
                    for (size_t i = 0; i < 2 * gr->ne; i++)
                        memcpy(buf + i * width, gr->edges[i], strlen(gr->edges[i]));
                    H5Dwrite(d, t, H5S_ALL, H5S_ALL, fz_dxpl, buf);
                    free(buf);
                }
            } else {
                H5Dwrite(d, t, H5S_ALL, H5S_ALL, fz_dxpl, gr->edges);
            }
        }
        if (d >= 0)
            H5Dclose(d);
        H5Sclose(sp);
        H5Tclose(t);
    }
    free(gr->edges);
    if (gr->nodes >= 0)
        H5Gclose(gr->nodes);
    if (gr->g >= 0)
        H5Gclose(gr->g);
}

/* Opens graph group `name` under loc with its type and nodes/. */
static int fz_open_graph(fz_graph_t *gr, hid_t loc, const char *name)
{
    memset(gr, 0, sizeof *gr);
    gr->g = H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    gr->nodes = -1;
    if (gr->g < 0)
        return -1;
    fz_str(gr->g, "type", "NIRGraph", 0);
    gr->nodes = H5Gcreate2(gr->g, "nodes", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    return gr->nodes < 0 ? -1 : 0;
}

/* Writes the described graph as an HDF5 file image; *image is malloc'ed. Returns 0, or -1 when HDF5 refused. */
static int fz_build(char *text, void **image, size_t *len)
{
    static char *tok[FZ_MAX_TOKENS];
    static double vals[FZ_MAX_VALUES];
    static long long ivals[FZ_MAX_VALUES];
    fz_graph_t gs[FZ_MAX_GRAPHS];
    int depth = 0, rc = -1;
    hid_t node = -1;
    *image = NULL;
    *len = 0;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, 1 << 16, 0);
    hid_t f = H5Fcreate("fuzz.nir", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0)
        return -1;
    fz_dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_buffer(fz_dxpl, 1 << 14, NULL, NULL);
    if (fz_open_graph(&gs[0], f, "node") != 0) {
        fz_close_graph(&gs[0]);
        H5Fclose(f);
        return -1;
    }
    depth = 1;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        int nt = 0;
        for (char *s2 = NULL, *t = strtok_r(line, " \t\r", &s2); t && nt < FZ_MAX_TOKENS;
             t = strtok_r(NULL, " \t\r", &s2))
            tok[nt++] = t;
        if (nt == 0)
            continue;
        fz_graph_t *gr = &gs[depth - 1];
        hid_t loc = node >= 0 ? node : gr->g;
        const char *op = tok[0];
        if (strcmp(op, "v") == 0 && nt >= 2) {
            fz_str(f, "version", tok[1], 0);
        } else if (strcmp(op, "g") == 0 && nt >= 2 && depth < FZ_MAX_GRAPHS) {
            if (node >= 0)
                H5Gclose(node);
            node = -1;
            if (fz_open_graph(&gs[depth], gr->nodes, tok[1]) != 0) {
                fz_close_graph(&gs[depth]);
                continue;
            }
            depth++;
        } else if (strcmp(op, "end") == 0 && depth > 1) {
            if (node >= 0)
                H5Gclose(node);
            node = -1;
            fz_close_graph(&gs[--depth]);
        } else if (strcmp(op, "n") == 0 && nt >= 2) {
            if (node >= 0)
                H5Gclose(node);
            node = H5Gcreate2(gr->nodes, tok[1], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            if (node >= 0 && nt >= 3)
                fz_str(node, "type", tok[2], 0);
        } else if ((strcmp(op, "f") == 0 || strcmp(op, "F") == 0) && nt >= 2) {
            int nv = nt - 2 < FZ_MAX_VALUES ? nt - 2 : FZ_MAX_VALUES;
            hsize_t n = (hsize_t)nv;
            for (int k = 0; k < nv; k++)
                vals[k] = strtod(tok[2 + k], NULL);
            fz_num(loc, tok[1], op[0] == 'f' ? H5T_IEEE_F64LE : H5T_IEEE_F32LE, H5T_NATIVE_DOUBLE, vals, 1, &n);
        } else if ((strcmp(op, "m") == 0 || strcmp(op, "M") == 0 || strcmp(op, "r") == 0) && nt >= 4) {
            int rank = op[0] == 'r' ? 3 : 2;
            if (nt < 2 + rank)
                continue;
            hsize_t dims[3] = {1, 1, 1};
            uint64_t cnt = 1;
            for (int k = 0; k < rank; k++) {
                dims[k] = strtoull(tok[2 + k], NULL, 10);
                cnt *= dims[k] ? dims[k] : 1;
                if (dims[k] > FZ_MAX_VALUES || cnt > 16 * FZ_MAX_VALUES)
                    break;
            }
            if (cnt > 16 * FZ_MAX_VALUES)
                continue;
            double *all = malloc((size_t)cnt * sizeof *all);
            if (!all)
                continue;
            int nv = nt - 2 - rank;
            for (uint64_t k = 0; k < cnt; k++)
                all[k] = nv > 0 ? strtod(tok[2 + rank + (int)(k % (uint64_t)nv)], NULL) : 0.0;
            fz_num(loc, tok[1], op[0] == 'M' ? H5T_IEEE_F32LE : H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, all, rank, dims);
            free(all);
        } else if (strcmp(op, "i") == 0 && nt >= 2) {
            int nv = nt - 2 < FZ_MAX_VALUES ? nt - 2 : FZ_MAX_VALUES;
            hsize_t n = (hsize_t)nv;
            for (int k = 0; k < nv; k++)
                ivals[k] = strtoll(tok[2 + k], NULL, 10);
            fz_num(loc, tok[1], H5T_STD_I64LE, H5T_NATIVE_LLONG, ivals, 1, &n);
        } else if ((strcmp(op, "s") == 0 || strcmp(op, "t") == 0) && nt >= 3) {
            fz_str(loc, tok[1], tok[2], op[0] == 't');
        } else if (strcmp(op, "e") == 0 && nt >= 3) {
            if (gr->ne == gr->cap) {
                size_t nc = gr->cap ? 2 * gr->cap : 8;
                char **ne = realloc(gr->edges, 2 * nc * sizeof *ne);
                if (!ne)
                    continue;
                gr->edges = ne;
                gr->cap = nc;
            }
            gr->edges[2 * gr->ne] = tok[1];
            gr->edges[2 * gr->ne + 1] = tok[2];
            gr->ne++;
        } else if ((strcmp(op, "l") == 0 || strcmp(op, "L") == 0) && nt >= 3) {
            if (op[0] == 'l')
                H5Lcreate_hard(f, tok[2], gr->nodes, tok[1], H5P_DEFAULT, H5P_DEFAULT);
            else
                H5Lcreate_soft(tok[2], gr->nodes, tok[1], H5P_DEFAULT, H5P_DEFAULT);
        } else if (strcmp(op, "fixed") == 0) {
            gr->fixed = 1;
        } else if (strcmp(op, "noedges") == 0) {
            gr->noedges = 1;
        }
    }
    if (node >= 0)
        H5Gclose(node);
    while (depth > 0)
        fz_close_graph(&gs[--depth]);
    if (H5Fflush(f, H5F_SCOPE_GLOBAL) >= 0) {
        ssize_t n = H5Fget_file_image(f, NULL, 0);
        if (n > 0 && (*image = malloc((size_t)n)) != NULL) {
            if (H5Fget_file_image(f, *image, (size_t)n) == n) {
                *len = (size_t)n;
                rc = 0;
            } else {
                free(*image);
                *image = NULL;
            }
        }
    }
    H5Fclose(f);
    H5Pclose(fz_dxpl);
    fz_dxpl = -1;
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const double steps[] = {0.1, 1.0, 0.05, 1e-3};
    static const uint8_t sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    char path[64];
    void *image = NULL;
    size_t len = size;
    const uint8_t *bytes = data;
    int is_hdf5 = size >= sizeof sig && memcmp(data, sig, sizeof sig) == 0;
    if (is_hdf5 && !fz_raw) {
        if (fz_verbose())
            fprintf(stderr, "an HDF5 file: imported only with FUZZ_NIR_RAW set\n");
        return 0;
    }
    if (!is_hdf5) {
        char *text = malloc(size + 1);
        FZ_CHECK(text != NULL, "out of memory");
        memcpy(text, data, size);
        text[size] = '\0';
        H5E_auto2_t efunc;
        void *edata;
        H5Eget_auto2(H5E_DEFAULT, &efunc, &edata);
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        int built = fz_build(text, &image, &len);
        H5Eclear2(H5E_DEFAULT);
        H5Eset_auto2(H5E_DEFAULT, efunc, edata);
        free(text);
        ssize_t left = H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL);
        FZ_CHECK(left == 0, "the harness left %zd HDF5 objects open", left);
        if (built != 0) {
            if (fz_verbose())
                fprintf(stderr, "HDF5 refused to write the described graph\n");
            return 0;
        }
        bytes = image;
        const char *save = getenv("FUZZ_SAVE_NIR"); /* keeps the HDF5 file written, for a regression test */
        FILE *sf = save ? fopen(save, "wb") : NULL;
        if (sf) {
            fwrite(image, 1, len, sf);
            fclose(sf);
        }
    }
    if (fz_write_temp(bytes, len, path, "nir") != 0) {
        perror("fuzz_nir: temporary file");
        abort();
    }
    free(image);
    double dt = steps[size % (sizeof steps / sizeof steps[0])];
    sm_net_t net;
    sm_errbuf_t eb = {0};
    int rc = sm_net_load_nir(path, dt, &net, &eb);
    unlink(path);
    ssize_t open_ids = H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL);
    FZ_CHECK(open_ids == 0, "%zd HDF5 objects left open (rc %d: %s)", open_ids, rc, eb.msg);
    if (rc) {
        fz_check_error(rc, &eb);
        FZ_CHECK(net.pops == NULL && net.projs == NULL && net.npops == 0, "a refused network keeps its arrays");
        return 0;
    }
    FZ_CHECK(net.dt == dt, "dt %g, asked for %g", net.dt, dt);
    fz_check_net(&net);
    fz_deploy(&net, NULL);
    sm_net_free(&net);
    return 0;
}
