/* fuzz_bound.c: libFuzzer harness for everything after a successful ONNX load:
 * forward evaluation, lowering into a bound network, IBP and CROWN over a box.
 * Seeds are the ONNX seeds; inputs that load are mostly small mutated models,
 * so this explores odd-but-valid graphs (shapes, attributes, broadcasting)
 * rather than the decoder. Sizes are capped so a run stays fast. */
#include <stdint.h>
#include <stdlib.h>

#include "../bound/bound.h"
#include "../models/nn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    err e = {0};
    nn_graph *g = NULL;
    if (nn_load_onnx_buffer("fuzz.onnx", data, size, &g, &e) != 0)
        return 0;
    int64_t nx = nn_input_size(g), ny = nn_output_size(g);
    if (nx <= 0 || ny <= 0 || nx > 1024 || ny > 64 || g->n_nodes > 64) {
        nn_graph_free(g);
        return 0;
    }
    double *buf = calloc((size_t)(3 * nx + 3 * ny), sizeof(double));
    if (!buf) {
        nn_graph_free(g);
        return 0;
    }
    double *lo = buf, *hi = lo + nx, *x = hi + nx, *y = x + nx, *lb = y + ny, *ub = lb + ny;
    for (int64_t i = 0; i < nx; i++)
        lo[i] = -1, hi[i] = 1, x[i] = 0.5;
    (void)nn_eval(g, x, y, &e);
    bnd_net *n = NULL;
    if (bnd_net_new(g, &n, &e) == 0) {
        (void)bnd_compute(n, BND_IBP, lo, hi, NULL, 0, lb, ub, &e);
        (void)bnd_compute(n, BND_CROWN, lo, hi, NULL, 0, lb, ub, &e);
        bnd_net_free(n);
    }
    free(buf);
    nn_graph_free(g);
    return 0;
}
