/* internal.h: the strategies behind bab_verify (private to bab/). Each
 * strategy decides the whole property or part of it and fills res->answer
 * (and the counterexample for sat); bab_verify chooses among them. */
#ifndef BAB_INTERNAL_H
#define BAB_INTERNAL_H

#include "bab.h"

/* Input-split branch and bound (input_split.c): complete for every network
 * bound/ supports, practical when the input dimension is small. */
int bab_input_split(const nn_graph *g, const spec_property *p, const bab_opts *o,
                    double deadline, bab_result *res, err *e);
/* The same over the moving inputs only: a one-region property whose fixed
 * inputs fold into the first layer (bnd_fold_fixed_inputs), on a network
 * that is then a chain (bnd_mlp_new); ERR_UNSUP when it is not. */
int bab_input_split_folded(const nn_graph *g, const spec_property *p, const bab_opts *o,
                           double deadline, bab_result *res, err *e);

#endif
