/* finalize.c: TEMPORARY stub of nn_graph_finalize (replaced by the full pass:
 * op resolution, topological order, shape inference, constant folding). */
#include "nn.h"

int nn_graph_finalize(nn_graph *g, err *e)
{
    for (int k = 0; k < g->n_nodes; k++)
        if (g->nodes[k].op == NN_OP_UNKNOWN)
            return err_set(e, ERR_UNSUP, "%s: node %d (%s): unsupported op", g->source, k,
                           g->nodes[k].op_type);
    g->input = -1;
    for (int i = 0; i < g->n_inputs; i++) {
        const nn_tensor *t = &g->tensors[g->inputs[i]];
        if (!t->data && !t->idata) {
            g->input = g->inputs[i];
            break;
        }
    }
    if (g->input < 0 || g->n_outputs < 1)
        return err_set(e, ERR_PARSE, "%s: graph needs one data input and one output", g->source);
    g->output = g->outputs[0];
    g->finalized = 1;
    return 0;
}
