/* fuzz_json.c: libFuzzer harness for the JSON model loader (parse + finalize). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../models/nn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    err e = { 0 };
    nn_graph *g = NULL;
    if (nn_load_json_string("fuzz.json", text, &g, &e) == 0)
        nn_graph_free(g);
    free(text);
    return 0;
}
