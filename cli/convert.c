/* convert: read a model in any supported format and write it in another.
 * The input format follows IN's extension (.onnx or .json, optionally .gz),
 * the output format OUT's (.onnx, .json or .json.gz). The graph written is the
 * finalized one (Constant nodes folded into initializers, shapes static). */
#include <stdio.h>
#include <string.h>

#include "../models/nn.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: convert IN OUT\n"
               "  Convert a neural network between formats.\n"
               "  IN:  model.onnx or model.json (either may end in .gz)\n"
               "  OUT: model.onnx, model.json or model.json.gz (the format follows the extension)\n"
               "  The JSON format is described in docs/json-format.md.\n");
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
    if (argc != 3 || argv[1][0] == '-' || argv[2][0] == '-') {
        fprintf(stderr, "convert: expected two arguments IN OUT (see convert --help)\n");
        return 2;
    }
    const char *in = argv[1], *out = argv[2];
    int to_json = ends_with(out, ".json") || ends_with(out, ".json.gz");
    if (!to_json && !ends_with(out, ".onnx")) {
        fprintf(stderr, "convert: %s: unknown output format (expected .onnx, .json or .json.gz)\n", out);
        return 2;
    }
    nn_graph *g = NULL;
    err e = {0};
    int rc = nn_load(in, &g, &e);
    if (!rc)
        rc = to_json ? nn_save_json(g, out, &e) : nn_save_onnx(g, out, &e);
    nn_graph_free(g);
    if (rc) {
        fprintf(stderr, "convert: %s\n", e.msg);
        return 1;
    }
    return 0;
}
