/* pb.h: a small protobuf wire-format reader and writer (no schema, no codegen).
 *
 * Reading: a pb_reader walks one message's bytes field by field; every length
 * is checked against the bytes left, so a sub-message slice can never point
 * outside the buffer. Errors say what went wrong and at which byte offset from
 * the start of the whole buffer (pb_reader.base). Groups (wire types 3 and 4)
 * are obsolete and rejected. Writing: a pb_buf grows as needed and remembers
 * an allocation failure, so callers check once at the end. */
#ifndef MODELS_PB_H
#define MODELS_PB_H

#include <stddef.h>
#include <stdint.h>

enum { PB_VARINT = 0, PB_FIXED64 = 1, PB_LEN = 2, PB_FIXED32 = 5 };

typedef struct {
    const uint8_t *base;  /* start of the whole buffer, for byte offsets */
    const uint8_t *p;     /* next byte */
    const uint8_t *end;   /* one past the message */
    const char *why;      /* set on error: what went wrong */
    size_t at;            /* set on error: byte offset */
} pb_reader;

typedef struct {
    uint32_t num;         /* field number */
    int wire;             /* PB_VARINT, PB_FIXED64, PB_LEN, PB_FIXED32 */
    uint64_t v;           /* value of VARINT / FIXED64 / FIXED32 fields */
    const uint8_t *data;  /* bytes of a LEN field */
    size_t len;
} pb_field;

pb_reader pb_reader_init(const uint8_t *buf, size_t len);
/* A reader over a LEN field's bytes (same base, for offsets). */
pb_reader pb_sub(const pb_reader *r, const pb_field *f);
/* Next field: 1 if read, 0 at the end of the message, -1 on error (why/at set). */
int pb_next(pb_reader *r, pb_field *f);
/* Read one varint / fixed value from r (used on packed fields): 0 or -1. */
int pb_varint(pb_reader *r, uint64_t *v);
int pb_fixed32(pb_reader *r, uint32_t *v);
int pb_fixed64(pb_reader *r, uint64_t *v);
/* Number of varints in a packed slice (r is not advanced), -1 if malformed. */
int64_t pb_count_varints(const pb_reader *r);
/* Byte offset of the reader's position. */
size_t pb_offset(const pb_reader *r);

typedef struct {
    uint8_t *data;
    size_t len, cap;
    int failed;           /* an allocation failed: contents are incomplete */
} pb_buf;

void pb_buf_free(pb_buf *b);
void pb_put_raw(pb_buf *b, const void *bytes, size_t n);
void pb_put_varint(pb_buf *b, uint64_t v);
void pb_put_tag(pb_buf *b, uint32_t num, int wire);
void pb_put_uint(pb_buf *b, uint32_t num, uint64_t v);         /* VARINT field */
void pb_put_bytes(pb_buf *b, uint32_t num, const void *bytes, size_t n);
void pb_put_string(pb_buf *b, uint32_t num, const char *s);
void pb_put_float(pb_buf *b, uint32_t num, float v);           /* FIXED32 field */
/* A sub-message: its encoded bytes in `sub` (freed here). */
void pb_put_message(pb_buf *b, uint32_t num, pb_buf *sub);
/* Little-endian helpers shared by the reader and writer of raw tensor data. */
void pb_le32(uint8_t *p, uint32_t v);
void pb_le64(uint8_t *p, uint64_t v);
static inline uint32_t pb_get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t pb_get_le64(const uint8_t *p)
{
    return (uint64_t)pb_get_le32(p) | (uint64_t)pb_get_le32(p + 4) << 32;
}

#endif
