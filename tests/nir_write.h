/* tests/nir_write.h: writes NIR graphs for the tests with libhdf5, in the layout nir.write uses: /version, /node
 * (type "NIRGraph", nodes/<name>/type and one dataset per parameter, edges as an E x 2 array of strings). */
#ifndef SPIKEMESH_TESTS_NIR_WRITE_H
#define SPIKEMESH_TESTS_NIR_WRITE_H

#include <hdf5.h>
#include <stddef.h>

/* Creates the file with /version "0.2.0"; returns its id (close with nw_close), or -1. */
hid_t nw_create(const char *path);
/* The graph group `name` under loc ("node" for the top graph, or a node of another graph through nw_node with type
 * "NIRGraph"): writes its type unless with_type is 0, creates nodes/; returns the group (close with H5Gclose). */
hid_t nw_graph(hid_t loc, const char *name, int with_type);
/* A node of a graph: the group graph/nodes/<name> with its type written; returns the group (H5Gclose). */
hid_t nw_node(hid_t graph, const char *name, const char *type);
/* Datasets: a string; n doubles as float64 or float32 (rank 1, or a rows x cols matrix when cols > 0); an int64
 * shape. */
void nw_str(hid_t loc, const char *name, const char *value);
void nw_f64(hid_t loc, const char *name, const double *v, size_t rows, size_t cols);
void nw_f32(hid_t loc, const char *name, const double *v, size_t rows, size_t cols);
void nw_shape(hid_t loc, const char *name, long long n);
/* The edges of a graph: n (source, target) pairs given as 2n names. */
void nw_edges(hid_t graph, const char *const *names, size_t n);
void nw_close(hid_t file);

/* One-value datasets, the common case of the tests. */
void nw_f64_1(hid_t loc, const char *name, double v);

/* Whole nodes, float64: an Input of n neurons; an Affine with weight rows x cols (out x in) and rows biases; a LIF
 * of n neurons with tau (s), r, v_leak and v_threshold. */
void nw_input(hid_t graph, const char *name, long long n);
void nw_affine(hid_t graph, const char *name, const double *w, size_t rows, size_t cols, const double *bias);
void nw_lif(hid_t graph, const char *name, size_t n, const double *tau, const double *r, const double *v_leak,
            const double *v_th);

#endif
