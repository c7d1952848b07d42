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

#endif
