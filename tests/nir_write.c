/* tests/nir_write.c: writes NIR graphs for the tests with libhdf5, in the layout nir.write uses (variable-length
 * UTF-8 strings, float arrays, int64 shapes). */
#include <stdlib.h>

#include "tests/nir_write.h"

static hid_t nw_strtype(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

hid_t nw_create(const char *path)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f >= 0)
        nw_str(f, "version", "0.2.0");
    return f;
}

void nw_close(hid_t file)
{
    H5Fclose(file);
}

hid_t nw_graph(hid_t loc, const char *name, int with_type)
{
    hid_t g = H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (with_type)
        nw_str(g, "type", "NIRGraph");
    hid_t n = H5Gcreate2(g, "nodes", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(n);
    return g;
}

hid_t nw_node(hid_t graph, const char *name, const char *type)
{
    hid_t nodes = H5Gopen2(graph, "nodes", H5P_DEFAULT);
    hid_t g;
    if (type && type[0] == 'N' && type[1] == 'I' && type[2] == 'R') { /* a nested graph */
        g = nw_graph(nodes, name, 1);
    } else {
        g = H5Gcreate2(nodes, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (type)
            nw_str(g, "type", type);
    }
    H5Gclose(nodes);
    return g;
}

void nw_str(hid_t loc, const char *name, const char *value)
{
    hid_t t = nw_strtype(), sp = H5Screate(H5S_SCALAR);
    hid_t d = H5Dcreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &value);
    H5Dclose(d);
    H5Sclose(sp);
    H5Tclose(t);
}

static void nw_num(hid_t loc, const char *name, hid_t ftype, const double *v, size_t rows, size_t cols)
{
    hsize_t dims[2] = {rows, cols};
    hid_t sp = H5Screate_simple(cols ? 2 : 1, dims, NULL);
    hid_t d = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(d);
    H5Sclose(sp);
}

void nw_f64(hid_t loc, const char *name, const double *v, size_t rows, size_t cols)
{
    nw_num(loc, name, H5T_IEEE_F64LE, v, rows, cols);
}

void nw_f32(hid_t loc, const char *name, const double *v, size_t rows, size_t cols)
{
    nw_num(loc, name, H5T_IEEE_F32LE, v, rows, cols);
}

void nw_f64_1(hid_t loc, const char *name, double v)
{
    nw_f64(loc, name, &v, 1, 0);
}

void nw_input(hid_t graph, const char *name, long long n)
{
    hid_t g = nw_node(graph, name, "Input");
    nw_shape(g, "shape", n);
    H5Gclose(g);
}

void nw_affine(hid_t graph, const char *name, const double *w, size_t rows, size_t cols, const double *bias)
{
    hid_t g = nw_node(graph, name, "Affine");
    nw_f64(g, "weight", w, rows, cols);
    nw_f64(g, "bias", bias, rows, 0);
    H5Gclose(g);
}

void nw_lif(hid_t graph, const char *name, size_t n, const double *tau, const double *r, const double *v_leak,
            const double *v_th)
{
    hid_t g = nw_node(graph, name, "LIF");
    nw_f64(g, "tau", tau, n, 0);
    nw_f64(g, "r", r, n, 0);
    nw_f64(g, "v_leak", v_leak, n, 0);
    nw_f64(g, "v_threshold", v_th, n, 0);
    H5Gclose(g);
}

void nw_shape(hid_t loc, const char *name, long long n)
{
    hsize_t dims[1] = {1};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(loc, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, &n);
    H5Dclose(d);
    H5Sclose(sp);
}

void nw_edges(hid_t graph, const char *const *names, size_t n)
{
    hsize_t dims[2] = {n, 2};
    hid_t t = nw_strtype(), sp = H5Screate_simple(2, dims, NULL);
    hid_t d = H5Dcreate2(graph, "edges", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (n > 0)
        H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, names);
    H5Dclose(d);
    H5Sclose(sp);
    H5Tclose(t);
}
