/* trn_crown_decl.h: declarations of the CROWN-IBP kernels for one scalar type
 * (included twice by trn.h, like trn_kern_decl.h). */
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, SFX)
/* One layer of the chain the CROWN pass walks back through (Flatten left out).
 * Pointers into per-image data (m, r, dm, dr) point at the chunk's first image. */
typedef struct {
    int kind;           /* trn_kind: TRN_CONV, TRN_LINEAR, TRN_BN, TRN_RELU; the last layer
                         * of the chain is the TRN_LINEAR the specification is folded into */
    int in, out;        /* values per image */
    trn_conv_shape sh;  /* conv */
    int C, HW;          /* BN: channels and values per channel */
    const REAL *W, *b;  /* conv/linear weight and bias; BN: per-channel scale a and shift c */
    const REAL *m, *r;  /* ReLU: centre and radius of the input interval (the IBP bounds) */
    REAL *dW, *db;      /* gradients, accumulated (BN: of a and c) */
    REAL *dm, *dr;      /* ReLU: gradients w.r.t. m and r, overwritten */
    REAL *lam;          /* the coefficients on this layer's input, nimg*(ncls-1)*in values;
                         * written by trn_crown_bound, read by trn_crown_grad */
} FN(trn_crown_layer);
size_t FN(trn_crown_scratch)(const FN(trn_crown_layer) *L, int nl, int nimg, int ncls);
void FN(trn_crown_bound)(FN(trn_crown_layer) *L, int nl, int ncls, const int *y, const REAL *m0,
                         const REAL *r0, int nimg, REAL *lb, REAL *scratch);
void FN(trn_crown_grad)(FN(trn_crown_layer) *L, int nl, int ncls, const int *y, const REAL *m0,
                        const REAL *r0, int nimg, const REAL *glb, REAL *scratch);
#undef FN
#undef CAT
#undef CAT_
