/* err.h: errors as values. Library functions return 0 on success or a negative
 * status and fill an err record with one line of context ("file: place: what"). */
#ifndef CORE_ERR_H
#define CORE_ERR_H

#include <stdarg.h>

#define ERR_MSG_MAX 512

enum {
    ERR_OK = 0,
    ERR_IO = -1,      /* missing file, read failure */
    ERR_PARSE = -2,   /* malformed input */
    ERR_UNSUP = -3,   /* well-formed but not supported (op, attribute) */
    ERR_SHAPE = -4,   /* shape or dimension mismatch */
    ERR_VALUE = -5,   /* bad value: NaN weights, out-of-range index */
    ERR_NOMEM = -6,   /* allocation failed or a declared size exceeds limits */
    ERR_ARG = -7,     /* bad argument from the caller */
    ERR_TIMEOUT = -8, /* deadline reached */
};

typedef struct err {
    int code;
    char msg[ERR_MSG_MAX];
} err;

/* Fill e (if not NULL) with a printf-style message; returns code so callers can
 * write `return err_set(e, ERR_PARSE, "%s: ...", path);`. */
int err_set(err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix an existing message with more context ("model.onnx: " + msg). */
int err_prefix(err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
