/* trn_crown_impl.h: CROWN-IBP margin bounds and their gradient, written once
 * over REAL (float for training, double for the gradient checks), included by
 * trn_kern_f.c / trn_kern_d.c after trn_kern_impl.h.
 *
 * The bound (Zhang et al. 2020, as auto_LiRPA computes it with IBP intermediate
 * bounds): start from the spec rows e_y - e_j folded into the last layer,
 * lam = W_y - W_j, beta = b_y - b_j, and walk back to the input:
 *   affine z = W x + b:   lam <- lam W,          beta += lam . b
 *   BN     z = a x + c:   lam <- lam a,          beta += lam . c
 *   ReLU   h = relu(z), z in [l, u] (IBP):  lam <- lam+ alpha + lam- s,  beta += lam- . t
 * with the triangle relaxation's upper line s = u/(u-l), t = -l s for unstable
 * neurons (s = 1 active, s = 0 inactive, t = 0 stable) and the "adaptive" lower
 * slope alpha = [s > 1/2]. At the input box (m0, r0): lb = lam.m0 - |lam|.r0 + beta.
 *
 * The gradient runs the same chain forwards (reverse mode of the walk above):
 * with G = dObj/dlb per row and dlam the gradient on a layer's input
 * coefficients, the gradient on its output coefficients is dlam W^T + G b
 * (affine), dlam a + G c (BN), dlam [lam>=0 ? alpha : s] + G [lam<0] t (ReLU);
 * the parameters collect lam (x) dlam and G lam terms, and the ReLU's s and t
 * pass their gradient to l and u, hence to the IBP centre and radius (alpha is
 * a step function of l, u and has no gradient). Rows are image-major: row
 * n*(ncls-1) + k is image n's k-th margin. */

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, SFX)
#define CL FN(trn_crown_layer)
/* the walks are sums over many elements: let them vectorise (fixed order still) */
#define CROWN_FAST __attribute__((optimize("O3", "fast-math")))

static size_t FN(crown_max_size)(const CL *L, int nl)
{
    size_t mx = 1;
    for (int i = 0; i < nl; i++) {
        mx = (size_t)L[i].in > mx ? (size_t)L[i].in : mx;
        mx = (size_t)L[i].out > mx ? (size_t)L[i].out : mx;
    }
    return mx;
}

static size_t FN(crown_conv_scratch)(const CL *L, int nl)
{
    size_t mx = 0;
    for (int i = 0; i < nl; i++)
        if (L[i].kind == TRN_CONV) {
            size_t s = trn_conv_scratch(&L[i].sh);
            mx = s > mx ? s : mx;
        }
    return mx;
}

/* scratch: conv scratch, beta (rows), the ReLU slopes (3 x size) and two
 * gradient buffers (rows x size) */
size_t FN(trn_crown_scratch)(const CL *L, int nl, int nimg, int ncls)
{
    size_t R = (size_t)nimg * (ncls - 1), S = FN(crown_max_size)(L, nl);
    return FN(crown_conv_scratch)(L, nl) + R + 3 * S + 2 * R * S + 16;
}

/* The relaxation of one ReLU neuron from its IBP centre and radius. */
static inline void FN(crown_relax)(REAL m, REAL r, REAL *alpha, REAL *s, REAL *t)
{
    REAL l = m - r, u = m + r;
    if (l >= 0) {
        *alpha = *s = 1;
        *t = 0;
    } else if (u <= 0) {
        *alpha = *s = *t = 0;
    } else {
        *s = u / (u - l);
        *t = -l * *s;
        *alpha = *s > (REAL)0.5 ? 1 : 0;
    }
}

CROWN_FAST void FN(trn_crown_bound)(CL *L, int nl, int ncls, const int *y, const REAL *m0, const REAL *r0,
                         int nimg, REAL *lb, REAL *scratch)
{
    int K = ncls - 1, R = nimg * K;
    size_t S = FN(crown_max_size)(L, nl);
    REAL *cs = scratch, *beta = cs + FN(crown_conv_scratch)(L, nl), *al = beta + R, *sl = al + S,
         *tl = sl + S;
    /* the top: the specification folded into the last linear layer */
    const CL *top = &L[nl - 1];
    int in = top->in;
    for (int n = 0; n < nimg; n++) {
        const REAL *wy = top->W + (size_t)y[n] * in;
        int k = 0;
        for (int j = 0; j < ncls; j++) {
            if (j == y[n])
                continue;
            const REAL *wj = top->W + (size_t)j * in;
            REAL *lam = top->lam + (size_t)(n * K + k) * in;
            for (int i = 0; i < in; i++)
                lam[i] = wy[i] - wj[i];
            beta[n * K + k] = top->b[y[n]] - top->b[j];
            k++;
        }
    }
    for (int i = nl - 2; i >= 0; i--) {
        const CL *c = &L[i];
        const REAL *lo = L[i + 1].lam; /* coefficients on this layer's output */
        REAL *li = c->lam;
        switch (c->kind) {
        case TRN_CONV: {
            int P = c->sh.ho * c->sh.wo;
            FN(trn_conv_bwd)(&c->sh, c->W, NULL, lo, NULL, NULL, li, 0, R, cs);
            for (int q = 0; q < R; q++)
                for (int ch = 0; ch < c->sh.cout; ch++) {
                    const REAL *p = lo + (size_t)q * c->out + (size_t)ch * P;
                    REAL s = 0;
                    for (int k = 0; k < P; k++)
                        s += p[k];
                    beta[q] += s * c->b[ch];
                }
            break;
        }
        case TRN_LINEAR:
            FN(trn_lin_bwd)(c->W, NULL, lo, NULL, NULL, li, R, c->in, c->out);
            for (int q = 0; q < R; q++) {
                const REAL *p = lo + (size_t)q * c->out;
                REAL s = 0;
                for (int k = 0; k < c->out; k++)
                    s += p[k] * c->b[k];
                beta[q] += s;
            }
            break;
        case TRN_BN:
            for (int q = 0; q < R; q++)
                for (int ch = 0; ch < c->C; ch++) {
                    size_t o = (size_t)q * c->out + (size_t)ch * c->HW;
                    REAL a = c->W[ch], s = 0;
                    for (int k = 0; k < c->HW; k++) {
                        s += lo[o + k];
                        li[o + k] = lo[o + k] * a;
                    }
                    beta[q] += s * c->b[ch];
                }
            break;
        case TRN_RELU:
            for (int n = 0; n < nimg; n++) {
                const REAL *m = c->m + (size_t)n * c->in, *r = c->r + (size_t)n * c->in;
                for (int j = 0; j < c->in; j++)
                    FN(crown_relax)(m[j], r[j], &al[j], &sl[j], &tl[j]);
                for (int k = 0; k < K; k++) {
                    size_t o = (size_t)(n * K + k) * c->in;
                    REAL s = 0;
                    for (int j = 0; j < c->in; j++) { /* branch-free so that it vectorises */
                        REAL v = lo[o + j], pos = v > 0 ? v : 0, neg = v - pos;
                        li[o + j] = pos * al[j] + neg * sl[j];
                        s += neg * tl[j];
                    }
                    beta[n * K + k] += s;
                }
            }
            break;
        default:
            break;
        }
    }
    int in0 = L[0].in;
    for (int n = 0; n < nimg; n++)
        for (int k = 0; k < K; k++) {
            const REAL *lam = L[0].lam + (size_t)(n * K + k) * in0;
            const REAL *m = m0 + (size_t)n * in0, *r = r0 + (size_t)n * in0;
            REAL s = 0;
            for (int j = 0; j < in0; j++)
                s += lam[j] * m[j] - (lam[j] >= 0 ? lam[j] : -lam[j]) * r[j];
            lb[n * K + k] = s + beta[n * K + k];
        }
}

CROWN_FAST void FN(trn_crown_grad)(CL *L, int nl, int ncls, const int *y, const REAL *m0, const REAL *r0,
                        int nimg, const REAL *glb, REAL *scratch)
{
    int K = ncls - 1, R = nimg * K;
    size_t S = FN(crown_max_size)(L, nl);
    REAL *cs = scratch, *al = cs + FN(crown_conv_scratch)(L, nl) + R, *sl = al + S, *tl = sl + S;
    REAL *da = tl + S, *db = da + (size_t)R * S; /* gradient on a layer's input / output coefs */
    int in0 = L[0].in;
    for (int n = 0; n < nimg; n++)
        for (int k = 0; k < K; k++) {
            size_t o = (size_t)(n * K + k) * in0;
            const REAL *lam = L[0].lam + o, *m = m0 + (size_t)n * in0, *r = r0 + (size_t)n * in0;
            REAL g = glb[n * K + k];
            for (int j = 0; j < in0; j++)
                da[o + j] = g * (m[j] - (lam[j] >= 0 ? r[j] : -r[j]));
        }
    for (int i = 0; i < nl - 1; i++) {
        CL *c = &L[i];
        const REAL *lo = L[i + 1].lam;
        switch (c->kind) {
        case TRN_CONV: {
            int P = c->sh.ho * c->sh.wo;
            FN(trn_conv_fwd)(&c->sh, c->W, NULL, da, db, 0, R, cs);
            FN(trn_conv_bwd)(&c->sh, c->W, da, lo, c->dW, NULL, NULL, 0, R, cs);
            for (int q = 0; q < R; q++) {
                REAL g = glb[q];
                for (int ch = 0; ch < c->sh.cout; ch++) {
                    size_t o = (size_t)q * c->out + (size_t)ch * P;
                    REAL s = 0, gb = g * c->b[ch];
                    for (int k = 0; k < P; k++) {
                        s += lo[o + k];
                        db[o + k] += gb;
                    }
                    c->db[ch] += g * s;
                }
            }
            break;
        }
        case TRN_LINEAR:
            FN(trn_lin_fwd)(c->W, NULL, da, db, R, c->in, c->out);
            FN(trn_lin_bwd)(c->W, da, lo, c->dW, NULL, NULL, R, c->in, c->out);
            for (int q = 0; q < R; q++) {
                REAL g = glb[q];
                size_t o = (size_t)q * c->out;
                for (int k = 0; k < c->out; k++) {
                    db[o + k] += g * c->b[k];
                    c->db[k] += g * lo[o + k];
                }
            }
            break;
        case TRN_BN:
            for (int q = 0; q < R; q++) {
                REAL g = glb[q];
                for (int ch = 0; ch < c->C; ch++) {
                    size_t o = (size_t)q * c->out + (size_t)ch * c->HW;
                    REAL a = c->W[ch], sh = c->b[ch], s = 0, sa = 0;
                    for (int k = 0; k < c->HW; k++) {
                        s += lo[o + k];
                        sa += da[o + k] * lo[o + k];
                        db[o + k] = da[o + k] * a + g * sh;
                    }
                    c->dW[ch] += sa;
                    c->db[ch] += g * s;
                }
            }
            break;
        case TRN_RELU:
            for (int n = 0; n < nimg; n++) {
                const REAL *m = c->m + (size_t)n * c->in, *r = c->r + (size_t)n * c->in;
                REAL *dm = c->dm + (size_t)n * c->in, *dr = c->dr + (size_t)n * c->in;
                for (int j = 0; j < c->in; j++) {
                    FN(crown_relax)(m[j], r[j], &al[j], &sl[j], &tl[j]);
                    dm[j] = dr[j] = 0;
                }
                /* dm, dr first collect P = sum_k dlam lam- and Q = sum_k G lam- */
                for (int k = 0; k < K; k++) {
                    size_t o = (size_t)(n * K + k) * c->in;
                    REAL g = glb[n * K + k];
                    for (int j = 0; j < c->in; j++) { /* branch-free so that it vectorises */
                        REAL v = lo[o + j], neg = v < 0 ? v : 0, isneg = v < 0 ? 1 : 0;
                        db[o + j] = da[o + j] * (al[j] + isneg * (sl[j] - al[j])) + g * isneg * tl[j];
                        dm[j] += da[o + j] * neg;
                        dr[j] += g * neg;
                    }
                }
                for (int j = 0; j < c->in; j++) {
                    REAL l = m[j] - r[j], u = m[j] + r[j], P = dm[j], Q = dr[j];
                    if (!(l < 0 && u > 0)) {
                        dm[j] = dr[j] = 0;
                        continue;
                    }
                    /* s = u/(u-l), t = -l s */
                    REAL w = u - l, ds = P - l * Q;
                    REAL gl = -sl[j] * Q + ds * u / (w * w), gu = -ds * l / (w * w);
                    dm[j] = gl + gu;
                    dr[j] = gu - gl;
                }
            }
            break;
        default:
            break;
        }
        REAL *t = da;
        da = db;
        db = t;
    }
    /* the top layer: lam = W_y - W_j, beta = b_y - b_j */
    CL *top = &L[nl - 1];
    int in = top->in;
    for (int n = 0; n < nimg; n++) {
        int k = 0;
        for (int j = 0; j < ncls; j++) {
            if (j == y[n])
                continue;
            const REAL *g = da + (size_t)(n * K + k) * in;
            REAL *dy = top->dW + (size_t)y[n] * in, *dj = top->dW + (size_t)j * in;
            for (int i = 0; i < in; i++) {
                dy[i] += g[i];
                dj[i] -= g[i];
            }
            top->db[y[n]] += glb[n * K + k];
            top->db[j] -= glb[n * K + k];
            k++;
        }
    }
}

#undef CROWN_FAST
#undef CL
#undef FN
#undef CAT
#undef CAT_
