/* vnnlib.c: streaming VNNLIB parser -> spec_property (boxes + DNF clauses).
 *
 * The file is read through zlib in 64 KiB chunks (gzread also reads plain
 * files) and tokenised on the fly; formulas become a small tree of and/or
 * nodes over classified atoms: an X-bound (one input against a constant) or an
 * output row (sum c_j Y_j <= d). The conjunction of all asserts is the unsafe
 * condition. Its DNF is built without multiplying the top level: atoms that
 * are plain top-level conjuncts (the usual X bounds and single output rows)
 * are collected once as a "base" and only genuine `or`s are multiplied, so the
 * common VNN-COMP layout costs linear time. Each DNF term's X atoms refine
 * the base box; terms with the same box are grouped into one region (hash on
 * the box, first-appearance order) and their Y atoms become clauses.
 * Nesting is limited (VNN_MAX_DEPTH) so recursion stays shallow, and the DNF
 * is capped (VNN_MAX_ATOMS) so it fails with a clear error, not a blow-up.
 */
#include "spec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define VNN_MAX_DEPTH 64           /* nesting of ( ... ) inside one assert */
#define VNN_MAX_TOKEN 256          /* longest symbol or number */
#define VNN_MAX_VARS ((int64_t)1 << 24) /* per kind; far above any VNN-COMP input */
/* DNF size caps: total atoms over all terms, and terms. A DNF as large as
 * the input itself is not a blow-up, so the cap is raised to a few times the
 * number of parsed nodes for very large files. */
#define VNN_MAX_ATOMS 1000000
#define VNN_MAX_TERMS 1000000
#define VNN_MAX_OUT ((int64_t)100000000) /* doubles in the result (boxes, rows) */
#define VNN_CHUNK 65536

enum { T_EOF, T_LP, T_RP, T_SYM };

typedef struct lexer {
    gzFile gz;                     /* NULL when reading from a string */
    const unsigned char *p, *end;
    int io_error;
    const char *name;
    int64_t line, col;
    int tok;                       /* current token */
    int64_t tline, tcol;           /* its position */
    int len;
    char sym[VNN_MAX_TOKEN + 1];
    unsigned char buf[VNN_CHUNK];
} lexer;

/* A linear term  coef * var ; var = 2*i for X_i, 2*j+1 for Y_j. */
typedef struct lin_term {
    int64_t var;
    double coef;
} lin_term;

enum { F_TRUE, F_FALSE, F_BOX, F_ROW, F_AND, F_OR };

/* F_BOX: x[var] <= value (upper) or >= value. F_ROW: sum lins[first..first+n) <= value.
 * F_AND/F_OR: children kids[first..first+n). */
typedef struct fnode {
    int kind;
    int upper;
    int64_t var;
    int64_t first, n;
    double value;
} fnode;

typedef struct parser {
    lexer lx;
    err *e;
    unsigned char *declared[2];    /* [0] X, [1] Y: declared[k][i] != 0 */
    int64_t decl_cap[2], decl_max[2], decl_count[2];
    fnode *nodes;
    int64_t n_nodes, cap_nodes;
    int64_t max_atoms, max_terms;  /* DNF caps for this file */
    int64_t *kids;
    int64_t n_kids, cap_kids;
    int64_t *stack;                /* children of the and/or being parsed */
    int64_t n_stack, cap_stack;
    int64_t *asserts;
    int64_t n_asserts, cap_asserts;
    lin_term *lins;                /* rows' terms, referenced by F_ROW nodes */
    int64_t n_lins, cap_lins;
    lin_term *expr;                /* scratch: the atom being parsed */
    int64_t n_expr, cap_expr;
} parser;

/* Grow *ptr (elements of size elem, capacity *cap) to hold at least need. */
static int grow(void *ptr, int64_t *cap, int64_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    int64_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *q = realloc(*(void **)ptr, (size_t)c * elem);
    if (!q)
        return ERR_NOMEM;
    *(void **)ptr = q;
    *cap = c;
    return 0;
}

/* ---------------------------------------------------------------- lexer */

static inline int is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static inline int is_delim(int c)
{
    return c == '(' || c == ')' || c == ';' || is_space(c);
}

static int lx_fill(lexer *L)
{
    if (!L->gz || L->io_error)
        return 0;
    int n = gzread(L->gz, L->buf, sizeof L->buf);
    if (n < 0) {
        L->io_error = 1;
        return 0;
    }
    if (n == 0)
        return 0;
    L->p = L->buf;
    L->end = L->buf + n;
    return 1;
}

static inline int lx_peek(lexer *L)
{
    if (L->p == L->end && !lx_fill(L))
        return -1;
    return *L->p;
}

static inline void lx_advance(lexer *L)
{
    if (*L->p == '\n') {
        L->line++;
        L->col = 1;
    } else {
        L->col++;
    }
    L->p++;
}

static int perr(parser *P, int code, int64_t line, int64_t col, const char *what, const char *sym)
{
    if (sym) {
        /* echo at most 40 printable characters of the offending token */
        char shown[48];
        size_t n = 0;
        for (; sym[n] && n < 40; n++)
            shown[n] = sym[n] >= 0x20 && sym[n] < 0x7f ? sym[n] : '?';
        strcpy(shown + n, sym[n] ? "..." : "");
        return err_set(P->e, code, "%s:%lld:%lld: %s '%s'", P->lx.name, (long long)line,
                       (long long)col, what, shown);
    }
    return err_set(P->e, code, "%s:%lld:%lld: %s", P->lx.name, (long long)line, (long long)col, what);
}

/* Error at the current token. */
static int terr(parser *P, int code, const char *what)
{
    lexer *L = &P->lx;
    return perr(P, code, L->tline, L->tcol, what, L->tok == T_SYM ? L->sym : NULL);
}

static int lx_next(parser *P)
{
    lexer *L = &P->lx;
    for (;;) {
        int c = lx_peek(L);
        if (c == ';') {
            /* skip to the newline, a buffer at a time */
            for (;;) {
                const unsigned char *nl = memchr(L->p, '\n', (size_t)(L->end - L->p));
                if (nl) {
                    L->col += nl - L->p;
                    L->p = nl;
                    break;
                }
                L->col += L->end - L->p;
                L->p = L->end;
                if (lx_peek(L) < 0)
                    break;
            }
        } else if (c >= 0 && is_space(c)) {
            lx_advance(L);
        } else {
            break;
        }
    }
    if (L->io_error)
        return err_set(P->e, ERR_IO, "%s:%lld: read error (corrupt gzip?)", L->name, (long long)L->line);
    L->tline = L->line;
    L->tcol = L->col;
    L->len = 0;
    L->sym[0] = 0;
    int c = lx_peek(L);
    if (c < 0) {
        L->tok = T_EOF;
        return 0;
    }
    if (c == '(' || c == ')') {
        L->tok = c == '(' ? T_LP : T_RP;
        lx_advance(L);
        return 0;
    }
    L->tok = T_SYM;
    while (lx_peek(L) >= 0) {
        /* copy the run of symbol characters in this buffer (no newlines in it) */
        const unsigned char *q = L->p;
        while (q < L->end && !is_delim(*q))
            q++;
        int64_t n = q - L->p;
        if (L->len + n > VNN_MAX_TOKEN)
            return perr(P, ERR_PARSE, L->tline, L->tcol, "token longer than 256 characters", NULL);
        memcpy(L->sym + L->len, L->p, (size_t)n);
        L->len += (int)n;
        L->col += n;
        L->p = q;
        if (q < L->end)
            break;
    }
    L->sym[L->len] = 0;
    if (L->io_error)
        return err_set(P->e, ERR_IO, "%s:%lld: read error (corrupt gzip?)", L->name, (long long)L->line);
    return 0;
}

static int expect_rp(parser *P)
{
    int rc = lx_next(P);
    if (rc)
        return rc;
    if (P->lx.tok != T_RP)
        return terr(P, ERR_PARSE, P->lx.tok == T_EOF ? "unexpected end of file, expected ')'"
                                                     : "expected ')'");
    return 0;
}

/* ------------------------------------------------------------- symbols */

/* 1 if s is a decimal number (optional sign, digits, '.', exponent). */
static int parse_number(const char *s, double *v)
{
    const char *q = s;
    if (*q == '+' || *q == '-')
        q++;
    int digits = 0;
    while (*q >= '0' && *q <= '9')
        q++, digits++;
    if (*q == '.') {
        q++;
        while (*q >= '0' && *q <= '9')
            q++, digits++;
    }
    if (!digits)
        return 0;
    if (*q == 'e' || *q == 'E') {
        q++;
        if (*q == '+' || *q == '-')
            q++;
        if (!(*q >= '0' && *q <= '9'))
            return 0;
        while (*q >= '0' && *q <= '9')
            q++;
    }
    if (*q)
        return 0;
    char *endp;
    *v = strtod(s, &endp);
    return *endp == 0 && isfinite(*v);
}

/* 1 if s is X_i / Y_j (kind 0 / 1); index checked against VNN_MAX_VARS. */
static int parse_var_name(const char *s, int *kind, int64_t *index)
{
    if ((s[0] != 'X' && s[0] != 'Y') || s[1] != '_' || !s[2])
        return 0;
    int64_t i = 0;
    for (const char *q = s + 2; *q; q++) {
        if (*q < '0' || *q > '9')
            return 0;
        i = i * 10 + (*q - '0');
        if (i >= VNN_MAX_VARS)
            return 0;
    }
    if (s[2] == '0' && s[3])
        return 0;   /* X_01 is not X_1 */
    *kind = s[0] == 'Y';
    *index = i;
    return 1;
}

static int parse_declare(parser *P)
{
    int rc = lx_next(P);
    if (rc)
        return rc;
    if (P->lx.tok != T_SYM)
        return terr(P, ERR_PARSE, "expected a variable name after declare-const");
    int kind;
    int64_t idx;
    if (!parse_var_name(P->lx.sym, &kind, &idx))
        return terr(P, ERR_UNSUP, "unsupported variable name (want X_i or Y_j)");
    if (grow(&P->declared[kind], &P->decl_cap[kind], idx + 1, 1))
        return err_set(P->e, ERR_NOMEM, "%s: out of memory", P->lx.name);
    if (idx >= P->decl_max[kind]) {
        memset(P->declared[kind] + P->decl_max[kind], 0, (size_t)(idx + 1 - P->decl_max[kind]));
        P->decl_max[kind] = idx + 1;
    }
    if (P->declared[kind][idx])
        return terr(P, ERR_PARSE, "variable declared twice");
    P->declared[kind][idx] = 1;
    P->decl_count[kind]++;
    if ((rc = lx_next(P)))
        return rc;
    if (P->lx.tok != T_SYM || strcmp(P->lx.sym, "Real") != 0)
        return terr(P, ERR_UNSUP, "expected sort Real");
    return expect_rp(P);
}

/* ------------------------------------------------------ linear terms */

static int push_lin(parser *P, int64_t var, double coef)
{
    if (grow(&P->expr, &P->cap_expr, P->n_expr + 1, sizeof *P->expr))
        return err_set(P->e, ERR_NOMEM, "%s: out of memory", P->lx.name);
    P->expr[P->n_expr++] = (lin_term){var, coef};
    return 0;
}

/* Parse one term whose first token is current; adds mult*term to expr / *k. */
static int parse_term(parser *P, double mult, double *k, int depth)
{
    lexer *L = &P->lx;
    if (L->tok == T_SYM) {
        double v;
        int kind;
        int64_t idx;
        if (parse_number(L->sym, &v)) {
            *k += mult * v;
            return 0;
        }
        if (!parse_var_name(L->sym, &kind, &idx)) {
            int bad_num = (L->sym[0] >= '0' && L->sym[0] <= '9') || L->sym[0] == '.' ||
                          L->sym[0] == '-' || L->sym[0] == '+';
            return terr(P, ERR_PARSE, bad_num ? "bad number" : "unknown variable");
        }
        if (idx >= P->decl_max[kind] || !P->declared[kind][idx])
            return terr(P, ERR_PARSE, "undeclared variable");
        return push_lin(P, 2 * idx + kind, mult);
    }
    if (L->tok != T_LP)
        return terr(P, ERR_PARSE, L->tok == T_EOF ? "unexpected end of file, expected a term"
                                                  : "expected a term");
    if (depth >= VNN_MAX_DEPTH)
        return terr(P, ERR_PARSE, "nesting deeper than 64 levels");
    int rc = lx_next(P);
    if (rc)
        return rc;
    if (L->tok != T_SYM)
        return terr(P, ERR_PARSE, "expected an operator");
    char op = L->sym[0];
    if (L->len != 1 || (op != '+' && op != '-' && op != '*'))
        return terr(P, ERR_UNSUP, "unsupported term operator");
    int64_t line = L->tline, col = L->tcol;
    int64_t mark = P->n_expr;
    int n_args = 0;
    double kk = 0.0, scale = 1.0;
    int have_var_factor = 0;
    for (;;) {
        if ((rc = lx_next(P)))
            return rc;
        if (L->tok == T_RP)
            break;
        if (op == '*') {
            int64_t before = P->n_expr;
            double kf = 0.0;
            if ((rc = parse_term(P, 1.0, &kf, depth + 1)))
                return rc;
            if (P->n_expr > before) {
                if (have_var_factor)
                    return perr(P, ERR_UNSUP, line, col, "nonlinear product", NULL);
                have_var_factor = 1;
                kk = kf;    /* the variable factor's own constant */
            } else {
                scale *= kf;
            }
        } else {
            double m = (op == '-' && n_args > 0) ? -mult : mult;
            if ((rc = parse_term(P, m, &kk, depth + 1)))
                return rc;
        }
        n_args++;
    }
    if (n_args == 0)
        return perr(P, ERR_PARSE, line, col, "operator without arguments", NULL);
    if (op == '-' && n_args == 1) {
        /* unary minus: the single argument was added with +mult; flip it */
        for (int64_t t = mark; t < P->n_expr; t++)
            P->expr[t].coef = -P->expr[t].coef;
        kk = -kk;
    }
    if (op != '*')
        *k += kk;
    if (op == '*') {
        double f = mult * scale;
        for (int64_t t = mark; t < P->n_expr; t++)
            P->expr[t].coef *= f;
        *k += have_var_factor ? f * kk : f;
    }
    return 0;
}

static int cmp_lin(const void *a, const void *b)
{
    int64_t x = ((const lin_term *)a)->var, y = ((const lin_term *)b)->var;
    return (x > y) - (x < y);
}

static int new_node(parser *P, fnode n, int64_t *id)
{
    if (grow(&P->nodes, &P->cap_nodes, P->n_nodes + 1, sizeof *P->nodes))
        return err_set(P->e, ERR_NOMEM, "%s: out of memory", P->lx.name);
    P->nodes[P->n_nodes] = n;
    *id = P->n_nodes++;
    return 0;
}

/* Parse an atom; the operator symbol is current. Classifies it into a node. */
static int parse_atom(parser *P, int depth, int64_t *id)
{
    lexer *L = &P->lx;
    int64_t line = L->tline, col = L->tcol;
    /* `<` and `>` are read as `<=` and `>=`: over the reals the closure is
     * the sound (larger) unsafe set, and VNN-COMP tools treat them alike. */
    int geq = L->sym[0] == '>';
    P->n_expr = 0;
    double k = 0.0;
    int rc;
    for (int side = 0; side < 2; side++) {
        if ((rc = lx_next(P)))
            return rc;
        if (L->tok == T_RP)
            return perr(P, ERR_PARSE, line, col, "comparison needs two arguments", NULL);
        int64_t mark = P->n_expr;
        double ks = 0.0;
        if ((rc = parse_term(P, 1.0, &ks, depth + 1)))
            return rc;
        double s = (side == 0) == !geq ? 1.0 : -1.0;   /* lhs - rhs <= 0, or rhs - lhs */
        for (int64_t t = mark; t < P->n_expr; t++)
            P->expr[t].coef *= s;
        k += s * ks;
    }
    if ((rc = lx_next(P)))
        return rc;
    if (L->tok != T_RP)
        return terr(P, ERR_PARSE, L->tok == T_EOF ? "unexpected end of file, expected ')'"
                                                  : "expected ')' after two arguments");
    /* merge equal variables, drop zero coefficients:  sum coef*v <= -k */
    if (P->n_expr > 1)
        qsort(P->expr, (size_t)P->n_expr, sizeof *P->expr, cmp_lin);
    int64_t m = 0;
    for (int64_t t = 0; t < P->n_expr; t++) {
        if (m > 0 && P->expr[m - 1].var == P->expr[t].var)
            P->expr[m - 1].coef += P->expr[t].coef;
        else
            P->expr[m++] = P->expr[t];
    }
    int64_t nz = 0;
    for (int64_t t = 0; t < m; t++) {
        if (!isfinite(P->expr[t].coef))
            return perr(P, ERR_VALUE, line, col, "coefficient is not finite", NULL);
        if (P->expr[t].coef != 0.0)
            P->expr[nz++] = P->expr[t];
    }
    m = P->n_expr = nz;
    double rhs = -k;
    int n_x = 0, n_y = 0;
    for (int64_t t = 0; t < m; t++)
        (P->expr[t].var & 1) ? n_y++ : n_x++;
    fnode n = {0};
    if (!isfinite(rhs))
        return perr(P, ERR_VALUE, line, col, "constant is not finite", NULL);
    if (m == 0) {
        n.kind = 0.0 <= rhs ? F_TRUE : F_FALSE;
    } else if (n_x && n_y) {
        return perr(P, ERR_UNSUP, line, col, "atom mixes inputs X and outputs Y", NULL);
    } else if (n_x > 1) {
        return perr(P, ERR_UNSUP, line, col, "atom relates several inputs (only bounds supported)", NULL);
    } else if (n_x == 1) {
        double c = P->expr[0].coef;
        n.kind = F_BOX;
        n.var = P->expr[0].var / 2;
        n.upper = c > 0;
        n.value = rhs / c + 0.0;   /* + 0.0: -0 becomes +0 so equal boxes hash alike */
        if (fabs(c) != 1.0)        /* the division rounded: widen the box by one ulp */
            n.value = nextafter(n.value, n.upper ? INFINITY : -INFINITY);
        if (!isfinite(n.value))
            return perr(P, ERR_VALUE, line, col, "bound is not finite", NULL);
    } else {
        if (grow(&P->lins, &P->cap_lins, P->n_lins + m, sizeof *P->lins))
            return err_set(P->e, ERR_NOMEM, "%s: out of memory", P->lx.name);
        n.kind = F_ROW;
        n.first = P->n_lins;
        n.n = m;
        n.value = rhs;
        for (int64_t t = 0; t < m; t++) {
            P->lins[P->n_lins] = P->expr[t];
            P->lins[P->n_lins++].var /= 2;
        }
    }
    return new_node(P, n, id);
}

/* Parse a formula whose first token is current (a '(' or true/false). */
static int parse_formula(parser *P, int depth, int64_t *id)
{
    lexer *L = &P->lx;
    int rc;
    if (L->tok == T_SYM) {
        if (!strcmp(L->sym, "true") || !strcmp(L->sym, "false"))
            return new_node(P, (fnode){.kind = L->sym[0] == 't' ? F_TRUE : F_FALSE}, id);
        return terr(P, ERR_PARSE, "expected a formula, got");
    }
    if (L->tok != T_LP)
        return terr(P, ERR_PARSE, L->tok == T_EOF ? "unexpected end of file, expected a formula"
                                                  : "expected a formula");
    if (depth >= VNN_MAX_DEPTH)
        return terr(P, ERR_PARSE, "nesting deeper than 64 levels");
    if ((rc = lx_next(P)))
        return rc;
    if (L->tok != T_SYM)
        return terr(P, ERR_PARSE, "expected an operator");
    const char *s = L->sym;
    if (!strcmp(s, "<=") || !strcmp(s, ">=") || !strcmp(s, "<") || !strcmp(s, ">"))
        return parse_atom(P, depth, id);
    int is_and = !strcmp(s, "and");
    if (!is_and && strcmp(s, "or"))
        return terr(P, ERR_UNSUP, "unsupported operator");
    int64_t mark = P->n_stack;
    for (;;) {
        if ((rc = lx_next(P)))
            return rc;
        if (L->tok == T_RP)
            break;
        int64_t child;
        if ((rc = parse_formula(P, depth + 1, &child)))
            return rc;
        if (grow(&P->stack, &P->cap_stack, P->n_stack + 1, sizeof *P->stack))
            return err_set(P->e, ERR_NOMEM, "%s: out of memory", L->name);
        P->stack[P->n_stack++] = child;
    }
    int64_t n = P->n_stack - mark;
    if (grow(&P->kids, &P->cap_kids, P->n_kids + n, sizeof *P->kids))
        return err_set(P->e, ERR_NOMEM, "%s: out of memory", L->name);
    fnode node = {.kind = is_and ? F_AND : F_OR, .first = P->n_kids, .n = n};
    if (n)   /* (and) / (or) without arguments: true / false */
        memcpy(P->kids + P->n_kids, P->stack + mark, (size_t)n * sizeof *P->kids);
    P->n_kids += n;
    P->n_stack = mark;
    return new_node(P, node, id);
}

/* Skip a harmless SMT command like (check-sat) up to its closing ')'. */
static int skip_command(parser *P)
{
    int64_t open = 1;
    while (open > 0) {
        int rc = lx_next(P);
        if (rc)
            return rc;
        if (P->lx.tok == T_EOF)
            return terr(P, ERR_PARSE, "unexpected end of file (unbalanced parentheses)");
        open += P->lx.tok == T_LP ? 1 : P->lx.tok == T_RP ? -1 : 0;
    }
    return 0;
}

static int parse_file(parser *P)
{
    lexer *L = &P->lx;
    int rc, any = 0;
    for (;;) {
        if ((rc = lx_next(P)))
            return rc;
        if (L->tok == T_EOF)
            break;
        any = 1;
        if (L->tok != T_LP)
            return terr(P, ERR_PARSE, L->tok == T_RP ? "unexpected ')'" : "expected '(' at top level, got");
        if ((rc = lx_next(P)))
            return rc;
        if (L->tok != T_SYM)
            return terr(P, ERR_PARSE, L->tok == T_EOF ? "unexpected end of file, expected a command"
                                                      : "expected a command");
        if (!strcmp(L->sym, "declare-const")) {
            rc = parse_declare(P);
        } else if (!strcmp(L->sym, "assert")) {
            int64_t id;
            if (!(rc = lx_next(P)) && !(rc = parse_formula(P, 1, &id)) && !(rc = expect_rp(P))) {
                if (grow(&P->asserts, &P->cap_asserts, P->n_asserts + 1, sizeof *P->asserts))
                    return err_set(P->e, ERR_NOMEM, "%s: out of memory", L->name);
                P->asserts[P->n_asserts++] = id;
            }
        } else if (!strcmp(L->sym, "check-sat") || !strcmp(L->sym, "get-model") ||
                   !strcmp(L->sym, "exit") || !strcmp(L->sym, "set-logic") ||
                   !strcmp(L->sym, "set-info") || !strcmp(L->sym, "set-option")) {
            rc = skip_command(P);
        } else {
            rc = terr(P, ERR_UNSUP, "unsupported command");
        }
        if (rc)
            return rc;
    }
    if (!any)
        return err_set(P->e, ERR_PARSE, "%s: empty file (no declarations or asserts)", L->name);
    if (!P->n_asserts)
        return err_set(P->e, ERR_PARSE, "%s: no assert", L->name);
    for (int kind = 0; kind < 2; kind++)
        if (P->decl_count[kind] != P->decl_max[kind]) {
            int64_t i = 0;
            while (P->declared[kind][i])
                i++;
            return err_set(P->e, ERR_PARSE, "%s: %c_%lld is not declared but %c_%lld is", L->name,
                           kind ? 'Y' : 'X', (long long)i, kind ? 'Y' : 'X',
                           (long long)(P->decl_max[kind] - 1));
        }
    if (!P->decl_count[0])
        return err_set(P->e, ERR_PARSE, "%s: no input variable X_0 declared", L->name);
    return 0;
}

/* ----------------------------------------------------------------- DNF */

/* A DNF: n terms; term t holds atoms[off[t] .. off[t+1]) (node ids). */
typedef struct dnf {
    int64_t n;
    int64_t *off;
    int64_t *atoms;
} dnf;

static void dnf_free(dnf *d)
{
    free(d->off);
    free(d->atoms);
    d->off = NULL;
    d->atoms = NULL;
    d->n = 0;
}

static int dnf_alloc(dnf *d, int64_t n, int64_t n_atoms)
{
    d->n = n;
    d->off = malloc((size_t)(n + 1) * sizeof *d->off);
    d->atoms = malloc((size_t)(n_atoms > 0 ? n_atoms : 1) * sizeof *d->atoms);
    if (!d->off || !d->atoms) {
        dnf_free(d);
        return ERR_NOMEM;
    }
    d->off[0] = 0;
    return 0;
}

static int dnf_cap_error(parser *P)
{
    return err_set(P->e, ERR_NOMEM,
                   "%s: the DNF of the asserts exceeds %d terms or %d atoms; property too large",
                   P->lx.name, VNN_MAX_TERMS, VNN_MAX_ATOMS);
}

/* r = a x b (every term of a joined with every term of b). Frees a. */
static int dnf_cross(parser *P, dnf *a, const dnf *b)
{
    int64_t na = a->off[a->n], nb = b->off[b->n];
    int64_t terms = a->n * b->n;
    int64_t atoms = na * b->n + nb * a->n;
    if (terms > P->max_terms || atoms > P->max_atoms)
        return dnf_cap_error(P);
    dnf r;
    if (dnf_alloc(&r, terms, atoms))
        return err_set(P->e, ERR_NOMEM, "%s: out of memory", P->lx.name);
    int64_t t = 0, w = 0;
    for (int64_t i = 0; i < a->n; i++)
        for (int64_t j = 0; j < b->n; j++) {
            for (int64_t q = a->off[i]; q < a->off[i + 1]; q++)
                r.atoms[w++] = a->atoms[q];
            for (int64_t q = b->off[j]; q < b->off[j + 1]; q++)
                r.atoms[w++] = b->atoms[q];
            r.off[++t] = w;
        }
    dnf_free(a);
    *a = r;
    return 0;
}

static int dnf_single(dnf *d, const int64_t *atoms, int64_t n)
{
    if (dnf_alloc(d, 1, n))
        return ERR_NOMEM;
    if (n)
        memcpy(d->atoms, atoms, (size_t)n * sizeof *atoms);
    d->off[1] = n;
    return 0;
}

static int dnf_of(parser *P, int64_t id, dnf *out);

/* Conjoin node k into (acc, leaf): leaves and single-term DNFs only append
 * to the leaf list (joined once at the end, so a long conjunction of
 * one-disjunct ors stays linear); genuine disjunctions are multiplied into
 * acc; a false child empties acc. */
static int dnf_and_child(parser *P, int64_t k, dnf *acc, int64_t **leaf, int64_t *n_leaf,
                         int64_t *cap_leaf)
{
    int kind = P->nodes[k].kind;
    if (kind == F_TRUE)
        return 0;
    if (kind == F_BOX || kind == F_ROW) {
        if (grow(leaf, cap_leaf, *n_leaf + 1, sizeof **leaf))
            return err_set(P->e, ERR_NOMEM, "%s: out of memory", P->lx.name);
        (*leaf)[(*n_leaf)++] = k;
        return 0;
    }
    dnf sub;
    int rc = dnf_of(P, k, &sub);
    if (rc)
        return rc;
    if (sub.n == 1) {
        int64_t m = sub.off[1];
        if (grow(leaf, cap_leaf, *n_leaf + m, sizeof **leaf)) {
            dnf_free(&sub);
            return err_set(P->e, ERR_NOMEM, "%s: out of memory", P->lx.name);
        }
        if (m)
            memcpy(*leaf + *n_leaf, sub.atoms, (size_t)m * sizeof **leaf);
        *n_leaf += m;
    } else {
        rc = dnf_cross(P, acc, &sub);
    }
    dnf_free(&sub);
    return rc;
}

/* DNF of node id. And-nodes: atoms are gathered once and joined at the end. */
static int dnf_of(parser *P, int64_t id, dnf *out)
{
    const fnode *n = &P->nodes[id];
    int rc;
    memset(out, 0, sizeof *out);
    switch (n->kind) {
    case F_TRUE:
        return dnf_single(out, NULL, 0) ? err_set(P->e, ERR_NOMEM, "%s: out of memory", P->lx.name) : 0;
    case F_FALSE:
        return dnf_alloc(out, 0, 0) ? err_set(P->e, ERR_NOMEM, "%s: out of memory", P->lx.name) : 0;
    case F_BOX:
    case F_ROW:
        return dnf_single(out, &id, 1) ? err_set(P->e, ERR_NOMEM, "%s: out of memory", P->lx.name) : 0;
    case F_OR: {
        dnf *parts = calloc((size_t)(n->n ? n->n : 1), sizeof *parts);
        if (!parts)
            return err_set(P->e, ERR_NOMEM, "%s: out of memory", P->lx.name);
        int64_t terms = 0, atoms = 0;
        rc = 0;
        for (int64_t c = 0; c < n->n && !rc; c++) {
            rc = dnf_of(P, P->kids[n->first + c], &parts[c]);
            if (!rc) {
                terms += parts[c].n;
                atoms += parts[c].off[parts[c].n];
                if (terms > P->max_terms || atoms > P->max_atoms)
                    rc = dnf_cap_error(P);
            }
        }
        if (!rc && dnf_alloc(out, terms, atoms))
            rc = err_set(P->e, ERR_NOMEM, "%s: out of memory", P->lx.name);
        if (!rc) {
            int64_t t = 0, w = 0;
            for (int64_t c = 0; c < n->n; c++)
                for (int64_t i = 0; i < parts[c].n; i++) {
                    for (int64_t q = parts[c].off[i]; q < parts[c].off[i + 1]; q++)
                        out->atoms[w++] = parts[c].atoms[q];
                    out->off[++t] = w;
                }
        }
        for (int64_t c = 0; c < n->n; c++)
            dnf_free(&parts[c]);
        free(parts);
        return rc;
    }
    case F_AND: {
        int64_t *leaf = NULL, n_leaf = 0, cap_leaf = 0;
        if (dnf_single(out, NULL, 0))
            return err_set(P->e, ERR_NOMEM, "%s: out of memory", P->lx.name);
        rc = 0;
        for (int64_t c = 0; c < n->n && !rc; c++)
            rc = dnf_and_child(P, P->kids[n->first + c], out, &leaf, &n_leaf, &cap_leaf);
        if (!rc && n_leaf) {
            dnf l;
            if (dnf_single(&l, leaf, n_leaf))
                rc = err_set(P->e, ERR_NOMEM, "%s: out of memory", P->lx.name);
            else {
                rc = dnf_cross(P, out, &l);
                dnf_free(&l);
            }
        }
        free(leaf);
        if (rc)
            dnf_free(out);
        return rc;
    }
    }
    return err_set(P->e, ERR_ARG, "%s: internal error: bad node", P->lx.name);
}

/* --------------------------------------------------------- regions */

typedef struct builder {
    spec_property *prop;
    int *clause_cap;
    int cap_regions;
    int64_t *table;          /* hash -> region index + 1, 0 = empty */
    int64_t table_size;
    int64_t out_doubles;     /* result size so far, checked against VNN_MAX_OUT */
} builder;

static uint64_t hash_box(const double *lo, const double *hi, int64_t n)
{
    uint64_t h = 1469598103934665603ull;
    const unsigned char *b[2] = {(const unsigned char *)lo, (const unsigned char *)hi};
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < (size_t)n * sizeof(double); i++)
            h = (h ^ b[s][i]) * 1099511628211ull;
    return h;
}

static int table_insert(builder *B, uint64_t h, int64_t region)
{
    if ((region + 1) * 2 > B->table_size) {
        int64_t size = B->table_size ? B->table_size * 2 : 64;
        int64_t *t = calloc((size_t)size, sizeof *t);
        if (!t)
            return ERR_NOMEM;
        spec_property *p = B->prop;
        for (int64_t r = 0; r < region; r++) {
            uint64_t hr = hash_box(p->regions[r].lo, p->regions[r].hi, p->n_x);
            int64_t s = (int64_t)(hr & (uint64_t)(size - 1));
            while (t[s])
                s = (s + 1) & (size - 1);
            t[s] = r + 1;
        }
        free(B->table);
        B->table = t;
        B->table_size = size;
    }
    int64_t s = (int64_t)(h & (uint64_t)(B->table_size - 1));
    while (B->table[s])
        s = (s + 1) & (B->table_size - 1);
    B->table[s] = region + 1;
    return 0;
}

/* Index of the region with this box, creating it if new. */
static int find_region(parser *P, builder *B, const double *lo, const double *hi, int *out)
{
    spec_property *p = B->prop;
    int64_t bytes = p->n_x * (int64_t)sizeof(double);
    uint64_t h = hash_box(lo, hi, p->n_x);
    if (B->table_size) {
        int64_t s = (int64_t)(h & (uint64_t)(B->table_size - 1));
        while (B->table[s]) {
            spec_region *r = &p->regions[B->table[s] - 1];
            if (!memcmp(r->lo, lo, (size_t)bytes) && !memcmp(r->hi, hi, (size_t)bytes)) {
                *out = (int)(B->table[s] - 1);
                return 0;
            }
            s = (s + 1) & (B->table_size - 1);
        }
    }
    B->out_doubles += 2 * p->n_x;
    if (B->out_doubles > VNN_MAX_OUT)
        return err_set(P->e, ERR_NOMEM, "%s: property too large (boxes x inputs > %lld)",
                       P->lx.name, (long long)VNN_MAX_OUT);
    if (p->n_regions == INT32_MAX / 4)
        return err_set(P->e, ERR_NOMEM, "%s: too many regions", P->lx.name);
    if (p->n_regions == B->cap_regions) {
        int cap = B->cap_regions ? 2 * B->cap_regions : 4;
        spec_region *r = realloc(p->regions, (size_t)cap * sizeof *r);
        if (!r)
            return err_set(P->e, ERR_NOMEM, "%s: out of memory", P->lx.name);
        p->regions = r;
        int *cc = realloc(B->clause_cap, (size_t)cap * sizeof *cc);
        if (!cc)
            return err_set(P->e, ERR_NOMEM, "%s: out of memory", P->lx.name);
        B->clause_cap = cc;
        B->cap_regions = cap;
    }
    spec_region *r = &p->regions[p->n_regions];
    memset(r, 0, sizeof *r);
    r->lo = malloc((size_t)bytes);
    r->hi = malloc((size_t)bytes);
    B->clause_cap[p->n_regions] = 0;
    p->n_regions++;   /* counted now so spec_free releases it on error */
    if (!r->lo || !r->hi || table_insert(B, h, p->n_regions - 1))
        return err_set(P->e, ERR_NOMEM, "%s: out of memory", P->lx.name);
    memcpy(r->lo, lo, (size_t)bytes);
    memcpy(r->hi, hi, (size_t)bytes);
    *out = p->n_regions - 1;
    return 0;
}

static void apply_box(const fnode *n, double *lo, double *hi)
{
    if (n->upper) {
        if (n->value < hi[n->var])
            hi[n->var] = n->value;
    } else if (n->value > lo[n->var]) {
        lo[n->var] = n->value;
    }
}

static int add_row(const parser *P, const fnode *n, double *C, double *d, int64_t n_y)
{
    for (int64_t t = n->first; t < n->first + n->n; t++)
        C[P->lins[t].var] += P->lins[t].coef;
    *d = n->value;
    (void)n_y;
    return 0;
}

/* Add term `atoms` (plus the base) as a clause of the region of its box. */
static int add_term(parser *P, builder *B, const double *base_lo, const double *base_hi,
                    const int64_t *base_rows, int64_t n_base_rows, const int64_t *atoms,
                    int64_t n_atoms, double *lo, double *hi, int *base_region)
{
    spec_property *p = B->prop;
    int has_x = 0;
    int64_t n_rows = n_base_rows;
    for (int64_t a = 0; a < n_atoms; a++)
        P->nodes[atoms[a]].kind == F_BOX ? (has_x = 1) : n_rows++;
    int region = -1;
    int rc;
    if (has_x || *base_region < 0) {
        memcpy(lo, base_lo, (size_t)p->n_x * sizeof *lo);
        memcpy(hi, base_hi, (size_t)p->n_x * sizeof *hi);
        for (int64_t a = 0; a < n_atoms; a++)
            if (P->nodes[atoms[a]].kind == F_BOX)
                apply_box(&P->nodes[atoms[a]], lo, hi);
        for (int64_t i = 0; i < p->n_x; i++) {
            if (!isfinite(lo[i]) || !isfinite(hi[i]))
                return err_set(P->e, ERR_VALUE, "%s: X_%lld has no %s bound", P->lx.name,
                               (long long)i, isfinite(lo[i]) ? "upper" : "lower");
        }
        /* lower > upper: the box is empty, so no input can violate this term;
         * the term is dropped (it contributes nothing to the unsafe set). */
        for (int64_t i = 0; i < p->n_x; i++)
            if (lo[i] > hi[i])
                return 0;
        if ((rc = find_region(P, B, lo, hi, &region)))
            return rc;
        if (!has_x)
            *base_region = region;
    } else {
        region = *base_region;
    }
    B->out_doubles += n_rows * (p->n_y + 1);
    if (B->out_doubles > VNN_MAX_OUT)
        return err_set(P->e, ERR_NOMEM, "%s: property too large (rows x outputs > %lld)",
                       P->lx.name, (long long)VNN_MAX_OUT);
    spec_region *r = &p->regions[region];
    if (r->n_clauses == INT32_MAX / 4)
        return err_set(P->e, ERR_NOMEM, "%s: too many clauses", P->lx.name);
    if (r->n_clauses == B->clause_cap[region]) {
        int cap = r->n_clauses ? 2 * r->n_clauses : 4;
        spec_clause *c = realloc(r->clauses, (size_t)cap * sizeof *c);
        if (!c)
            return err_set(P->e, ERR_NOMEM, "%s: out of memory", P->lx.name);
        r->clauses = c;
        B->clause_cap[region] = cap;
    }
    spec_clause *c = &r->clauses[r->n_clauses];
    c->n_rows = (int)n_rows;
    c->C = calloc((size_t)(n_rows * p->n_y + 1), sizeof *c->C);
    c->d = calloc((size_t)(n_rows + 1), sizeof *c->d);
    r->n_clauses++;
    if (!c->C || !c->d)
        return err_set(P->e, ERR_NOMEM, "%s: out of memory", P->lx.name);
    int64_t row = 0;
    for (int64_t a = 0; a < n_base_rows; a++, row++)
        add_row(P, &P->nodes[base_rows[a]], c->C + row * p->n_y, c->d + row, p->n_y);
    for (int64_t a = 0; a < n_atoms; a++)
        if (P->nodes[atoms[a]].kind == F_ROW) {
            add_row(P, &P->nodes[atoms[a]], c->C + row * p->n_y, c->d + row, p->n_y);
            row++;
        }
    return 0;
}

/* Flatten the top-level conjunction: leaves -> base, other nodes -> rest. */
static int flatten_top(parser *P, int64_t id, int depth, int64_t **base, int64_t *n_base,
                       int64_t *cap_base, int64_t **rest, int64_t *n_rest, int64_t *cap_rest, int *is_false)
{
    const fnode *n = &P->nodes[id];
    if (n->kind == F_AND && depth < VNN_MAX_DEPTH) {
        for (int64_t c = 0; c < n->n; c++) {
            int rc = flatten_top(P, P->kids[n->first + c], depth + 1, base, n_base, cap_base, rest,
                                 n_rest, cap_rest, is_false);
            if (rc)
                return rc;
        }
        return 0;
    }
    if (n->kind == F_TRUE)
        return 0;
    if (n->kind == F_FALSE) {
        *is_false = 1;
        return 0;
    }
    int leaf = n->kind == F_BOX || n->kind == F_ROW;
    int64_t **arr = leaf ? base : rest, *cnt = leaf ? n_base : n_rest, *cap = leaf ? cap_base : cap_rest;
    if (grow(arr, cap, *cnt + 1, sizeof **arr))
        return err_set(P->e, ERR_NOMEM, "%s: out of memory", P->lx.name);
    (*arr)[(*cnt)++] = id;
    return 0;
}

static int build_property(parser *P, spec_property **out)
{
    int rc = 0;
    spec_property *p = calloc(1, sizeof *p);
    builder B = {0};
    int64_t *base = NULL, *rest = NULL, *base_rows = NULL;
    int64_t n_base = 0, cap_base = 0, n_rest = 0, cap_rest = 0, n_base_rows = 0;
    double *box = NULL;
    dnf d = {0};
    int is_false = 0, base_region = -1;
    if (!p)
        return err_set(P->e, ERR_NOMEM, "%s: out of memory", P->lx.name);
    p->n_x = P->decl_max[0];
    p->n_y = P->decl_max[1];
    B.prop = p;
    for (int64_t a = 0; a < P->n_asserts && !rc; a++)
        rc = flatten_top(P, P->asserts[a], 0, &base, &n_base, &cap_base, &rest, &n_rest, &cap_rest,
                         &is_false);
    if (rc || is_false)
        goto done;   /* a false conjunct: nothing is unsafe, no regions */
    /* the genuine disjunctions, multiplied out */
    if (dnf_single(&d, NULL, 0)) {
        rc = err_set(P->e, ERR_NOMEM, "%s: out of memory", P->lx.name);
        goto done;
    }
    /* single-term parts (e.g. `(assert (or (and ...)))`) join the base */
    for (int64_t i = 0; i < n_rest && !rc; i++)
        rc = dnf_and_child(P, rest[i], &d, &base, &n_base, &cap_base);
    if (rc)
        goto done;
    box = malloc((size_t)(4 * p->n_x) * sizeof *box);
    base_rows = malloc((size_t)(n_base ? n_base : 1) * sizeof *base_rows);
    if (!box || !base_rows) {
        rc = err_set(P->e, ERR_NOMEM, "%s: out of memory", P->lx.name);
        goto done;
    }
    double *base_lo = box, *base_hi = box + p->n_x, *lo = box + 2 * p->n_x, *hi = box + 3 * p->n_x;
    for (int64_t i = 0; i < p->n_x; i++) {
        base_lo[i] = -INFINITY;
        base_hi[i] = INFINITY;
    }
    for (int64_t a = 0; a < n_base; a++) {
        const fnode *n = &P->nodes[base[a]];
        if (n->kind == F_BOX)
            apply_box(n, base_lo, base_hi);
        else
            base_rows[n_base_rows++] = base[a];
    }
    for (int64_t t = 0; t < d.n && !rc; t++)
        rc = add_term(P, &B, base_lo, base_hi, base_rows, n_base_rows, d.atoms + d.off[t],
                      d.off[t + 1] - d.off[t], lo, hi, &base_region);
done:
    dnf_free(&d);
    free(base);
    free(rest);
    free(base_rows);
    free(box);
    free(B.table);
    free(B.clause_cap);
    if (rc) {
        spec_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* ------------------------------------------------------------ entry */

static int parse_with(parser *P, spec_property **out)
{
    int rc = parse_file(P);
    P->max_atoms = P->n_nodes * 2 > VNN_MAX_ATOMS ? P->n_nodes * 2 : VNN_MAX_ATOMS;
    P->max_terms = P->n_nodes > VNN_MAX_TERMS ? P->n_nodes : VNN_MAX_TERMS;
    if (!rc)
        rc = build_property(P, out);
    free(P->declared[0]);
    free(P->declared[1]);
    free(P->nodes);
    free(P->kids);
    free(P->stack);
    free(P->asserts);
    free(P->lins);
    free(P->expr);
    return rc;
}

static parser *parser_new(const char *name, err *e)
{
    parser *P = calloc(1, sizeof *P);
    if (!P) {
        err_set(e, ERR_NOMEM, "%s: out of memory", name);
        return NULL;
    }
    P->e = e;
    P->lx.name = name;
    P->lx.line = 1;
    P->lx.col = 1;
    return P;
}

int spec_parse_vnnlib(const char *path, spec_property **out, err *e)
{
    if (!path || !out)
        return err_set(e, ERR_ARG, "spec_parse_vnnlib: NULL argument");
    *out = NULL;
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return err_set(e, ERR_IO, "%s: cannot open", path);
    gzbuffer(gz, VNN_CHUNK);
    parser *P = parser_new(path, e);
    if (!P) {
        gzclose(gz);
        return ERR_NOMEM;
    }
    P->lx.gz = gz;
    P->lx.p = P->lx.end = P->lx.buf;
    int rc = parse_with(P, out);
    gzclose(gz);
    free(P);
    return rc;
}

int spec_parse_vnnlib_string(const char *source, const char *text, spec_property **out, err *e)
{
    if (!text || !out)
        return err_set(e, ERR_ARG, "spec_parse_vnnlib_string: NULL argument");
    *out = NULL;
    parser *P = parser_new(source ? source : "<string>", e);
    if (!P)
        return ERR_NOMEM;
    P->lx.p = (const unsigned char *)text;
    P->lx.end = P->lx.p + strlen(text);
    int rc = parse_with(P, out);
    free(P);
    return rc;
}
