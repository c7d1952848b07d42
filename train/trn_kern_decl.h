/* trn_kern_decl.h: declarations of the layer kernels for one scalar type
 * (included twice by trn.h: REAL float / SFX _f and REAL double / SFX _d). */
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, SFX)
void FN(trn_conv_fwd)(const trn_conv_shape *sh, const REAL *W, const REAL *b, const REAL *x,
                      REAL *y, int n0, int n1, REAL *col);
void FN(trn_conv_bwd)(const trn_conv_shape *sh, const REAL *W, const REAL *x, const REAL *dy,
                      REAL *dW, REAL *db, REAL *dx, int n0, int n1, REAL *col);
void FN(trn_lin_fwd)(const REAL *W, const REAL *b, const REAL *x, REAL *y, int N, int in, int out);
void FN(trn_lin_bwd)(const REAL *W, const REAL *x, const REAL *dy, REAL *dW, REAL *db, REAL *dx,
                     int N, int in, int out);
void FN(trn_bn_stats)(const REAL *x, int N, int C, int HW, double *mean, double *var);
void FN(trn_bn_affine)(const REAL *x, REAL *y, int C, int HW, const REAL *scale,
                       const REAL *shift, int n0, int n1);
void FN(trn_bn_bwd_sums)(const REAL *x, const REAL *gy, const REAL *m, const REAL *gm,
                         const REAL *r, const REAL *gr, int C, int HW, const double *mean,
                         double *sums, int n0, int n1);
void FN(trn_bn_bwd_coef)(const double *sums, const REAL *gamma, const double *mean,
                         const double *var, double eps, int C, double M, REAL *dgamma,
                         REAL *dbeta, double *coef);
void FN(trn_bn_bwd_apply)(const REAL *x, const REAL *gy, const REAL *gm, const REAL *gr,
                          REAL *dx, REAL *dm, REAL *dr, int C, int HW, const double *mean,
                          const double *coef, int n0, int n1);
void FN(trn_relu_fwd)(const REAL *x, REAL *y, size_t i0, size_t i1);
void FN(trn_relu_bwd)(const REAL *x, const REAL *gy, REAL *gx, size_t i0, size_t i1);
void FN(trn_relu_ibp_fwd)(const REAL *m, const REAL *r, REAL *mo, REAL *ro, size_t i0, size_t i1);
void FN(trn_relu_ibp_bwd)(const REAL *m, const REAL *r, const REAL *gmo, const REAL *gro, REAL *gm,
                          REAL *gr, size_t i0, size_t i1);
void FN(trn_margin_fwd)(const REAL *W, const REAL *b, const REAL *m, const REAL *r, const int *y,
                        int N, int in, int ncls, REAL *lb);
void FN(trn_margin_bwd)(const REAL *W, const REAL *m, const REAL *r, const int *y, const REAL *glb,
                        int N, int in, int ncls, REAL *dW, REAL *db, REAL *dm, REAL *dr);
double FN(trn_ce_loss)(const REAL *z, const int *y, int N, int ncls, REAL weight, REAL *gz,
                       int *n_err);
double FN(trn_robust_loss)(const REAL *lb, int N, int k, REAL weight, REAL *glb, int *n_err);
void FN(trn_reg_layer)(const REAL *c, const REAL *r, size_t n, double tol, double tau0,
                       double *tight, double *relu, int *relu_ok, double w_tight, double w_relu,
                       REAL *gm, REAL *gr);
void FN(trn_reg_sums)(const REAL *c, const REAL *r, size_t i0, size_t i1, double *s);
void FN(trn_reg_terms)(const double *s, size_t n, double tol, double tau0, double w_tight,
                       double w_relu, double *tight, double *relu, int *relu_ok, double *g);
void FN(trn_reg_grad)(const REAL *c, const REAL *r, const double *g, REAL *gm, REAL *gr,
                      size_t i0, size_t i1);
extern int FN(trn_conv_force);
void FN(trn_relu_ibp_fwd_sums)(const REAL *m, const REAL *r, REAL *mo, REAL *ro, size_t i0,
                               size_t i1, double *s);
void FN(trn_relu_ibp_bwd_reg)(const REAL *m, const REAL *r, const REAL *gmo, const REAL *gro,
                              REAL *gm, REAL *gr, const double *g, size_t i0, size_t i1);
void FN(trn_bn_stat_sums)(const REAL *x, int C, int HW, const REAL *shift, double *s, int n0,
                          int n1);
#undef FN
#undef CAT
#undef CAT_
