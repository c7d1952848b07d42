/* onnx.h: private entry points of the ONNX reader/writer (models/onnx.c), for
 * the loaders, the tests and the fuzzer. */
#ifndef MODELS_ONNX_H
#define MODELS_ONNX_H

#include "nn.h"

/* Decode an ONNX ModelProto into a raw (not finalized) graph. On error *out is
 * NULL and e says "source: graph.node[3].attribute[1]: what at byte N". */
int nn_onnx_decode(const char *source, const uint8_t *buf, size_t len, nn_graph **out, err *e);
/* Encode a graph as an ONNX ModelProto; *buf is malloc'd, caller frees. */
int nn_onnx_encode(const nn_graph *g, uint8_t **buf, size_t *len, err *e);
/* Read a whole file, gzip-compressed or plain, into a malloc'd buffer (at most
 * max_len bytes after decompression). */
int nn_read_file(const char *path, size_t max_len, uint8_t **buf, size_t *len, err *e);

#endif
