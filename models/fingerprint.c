/* fingerprint.c: a 64-bit FNV-1a hash of everything that decides what a
 * graph computes (ops, wiring, attributes, shapes, constant values), so a
 * cache of bounds can tell one network from another of the same shape
 * (bab_genbab_root). Names and the source file are left out: renaming a
 * tensor changes nothing computed. */
#include <string.h>

#include "nn.h"

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

#define MIX(h, v) mix((h), &(v), sizeof(v))

uint64_t nn_graph_fingerprint(const nn_graph *g)
{
    uint64_t h = 0xcbf29ce484222325ull;
    h = MIX(h, g->n_tensors), h = MIX(h, g->n_nodes), h = MIX(h, g->input), h = MIX(h, g->output);
    for (int t = 0; t < g->n_tensors; t++) {
        const nn_tensor *x = &g->tensors[t];
        h = MIX(h, x->rank);
        if (x->rank > 0)
            h = mix(h, x->dims, (size_t)x->rank * sizeof(int64_t));
        int64_t n = x->rank >= 0 ? x->size : 0;
        if (x->data)
            h = mix(h, x->data, (size_t)n * sizeof(double));
        if (x->idata)
            h = mix(h, x->idata, (size_t)n * sizeof(int64_t));
    }
    for (int k = 0; k < g->n_nodes; k++) {
        const nn_node *nd = &g->nodes[k];
        h = MIX(h, nd->op), h = MIX(h, nd->n_in), h = MIX(h, nd->n_out);
        h = mix(h, nd->in, (size_t)nd->n_in * sizeof(int));
        h = mix(h, nd->out, (size_t)nd->n_out * sizeof(int));
        for (int a = 0; a < nd->n_attr; a++) {
            const nn_attr *at = &nd->attr[a];
            if (at->name)
                h = mix(h, at->name, strlen(at->name));
            h = MIX(h, at->kind);
            h = MIX(h, at->i), h = MIX(h, at->f), h = MIX(h, at->n), h = MIX(h, at->tensor);
            if (at->s)
                h = mix(h, at->s, strlen(at->s));
            if (at->ints)
                h = mix(h, at->ints, (size_t)at->n * sizeof(int64_t));
            if (at->floats)
                h = mix(h, at->floats, (size_t)at->n * sizeof(double));
        }
    }
    return h;
}
