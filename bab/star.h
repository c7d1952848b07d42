/* star.h: exact enumeration of activation regions for low-dimensional
 * regions of chain ReLU MLPs (star.c; the strategy behind ACAS Xu's
 * hardest properties). */
#ifndef BAB_STAR_H
#define BAB_STAR_H

#include "internal.h"

#include "../bound/bound.h"

#define BAB_STAR_MAX_INPUTS 16
#define BAB_STAR_MAX_WIDTH 1024

/* Decides every region of p on g (a chain of dense layers and ReLUs, at most
 * BAB_STAR_MAX_INPUTS inputs) by star-set enumeration with o->threads
 * workers: res->answer BAB_UNSAT, BAB_SAT (res->x, res->y, res->region,
 * checked by bab_check_counterexample), BAB_UNKNOWN (some piece was neither
 * refuted nor a checked counterexample, or the stacks of nodes outgrew
 * o->memory) or BAB_TIMEOUT at deadline.
 * ERR_UNSUP when the network or property does not fit. */
int bab_star(const nn_graph *g, const spec_property *p, const bab_opts *o, double deadline,
             bab_result *res, err *e);

/* 1 when bab_star takes g and p (a ReLU chain, few inputs, few clauses). */
int bab_star_fits(const nn_graph *g, const spec_property *p);

#endif
