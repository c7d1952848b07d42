/* fuzz_vnnlib.c: libFuzzer harness for the VNNLIB parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../specs/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    err e = { 0 };
    spec_property *p = NULL;
    if (spec_parse_vnnlib_string("fuzz.vnnlib", text, &p, &e) == 0)
        spec_free(p);
    free(text);
    return 0;
}
