/* fuzz_onnx.c: libFuzzer harness for the ONNX loader (decode + finalize). */
#include <stddef.h>
#include <stdint.h>

#include "../models/nn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    err e = { 0 };
    nn_graph *g = NULL;
    if (nn_load_onnx_buffer("fuzz.onnx", data, size, &g, &e) == 0)
        nn_graph_free(g);
    return 0;
}
