/* pb.c: protobuf wire format, read and write (see pb.h). A varint is at most
 * 10 bytes, the 10th carrying only the top bit of a 64-bit value; a length is
 * accepted only if that many bytes remain. */
#include "pb.h"

#include <stdlib.h>
#include <string.h>

pb_reader pb_reader_init(const uint8_t *buf, size_t len)
{
    pb_reader r = {buf, buf, buf + len, NULL, 0};
    return r;
}

pb_reader pb_sub(const pb_reader *r, const pb_field *f)
{
    pb_reader s = {r->base, f->data, f->data + f->len, NULL, 0};
    return s;
}

size_t pb_offset(const pb_reader *r)
{
    return (size_t)(r->p - r->base);
}

static int fail(pb_reader *r, const char *why)
{
    r->why = why;
    r->at = pb_offset(r);
    return -1;
}

int pb_varint(pb_reader *r, uint64_t *v)
{
    uint64_t x = 0;
    const uint8_t *p = r->p;
    for (int i = 0; i < 10; i++) {
        if (p >= r->end)
            return fail(r, "truncated varint");
        uint8_t b = *p++;
        if (i == 9 && b > 1)
            return fail(r, "varint longer than 64 bits");
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            r->p = p;
            *v = x;
            return 0;
        }
    }
    return fail(r, "varint longer than 64 bits");
}

int pb_fixed32(pb_reader *r, uint32_t *v)
{
    if (r->end - r->p < 4)
        return fail(r, "truncated fixed32");
    *v = pb_get_le32(r->p);
    r->p += 4;
    return 0;
}

int pb_fixed64(pb_reader *r, uint64_t *v)
{
    if (r->end - r->p < 8)
        return fail(r, "truncated fixed64");
    *v = pb_get_le64(r->p);
    r->p += 8;
    return 0;
}

int64_t pb_count_varints(const pb_reader *r)
{
    int64_t n = 0;
    for (const uint8_t *p = r->p; p < r->end; p++)
        if (!(*p & 0x80))
            n++;
    if (r->p < r->end && (r->end[-1] & 0x80))
        return -1; /* the last varint is cut off */
    return n;
}

int pb_next(pb_reader *r, pb_field *f)
{
    if (r->p >= r->end)
        return 0;
    uint64_t key;
    if (pb_varint(r, &key))
        return -1;
    if ((key >> 3) == 0 || (key >> 3) > 0x1fffffff)
        return fail(r, "bad field number");
    f->num = (uint32_t)(key >> 3);
    f->wire = (int)(key & 7);
    f->v = 0;
    f->data = NULL;
    f->len = 0;
    switch (f->wire) {
    case PB_VARINT:
        return pb_varint(r, &f->v) ? -1 : 1;
    case PB_FIXED64:
        return pb_fixed64(r, &f->v) ? -1 : 1;
    case PB_FIXED32: {
        uint32_t v;
        if (pb_fixed32(r, &v))
            return -1;
        f->v = v;
        return 1;
    }
    case PB_LEN: {
        uint64_t n;
        if (pb_varint(r, &n))
            return -1;
        if (n > (uint64_t)(r->end - r->p))
            return fail(r, "length beyond the end of the message");
        f->data = r->p;
        f->len = (size_t)n;
        r->p += n;
        return 1;
    }
    case 3:
    case 4:
        return fail(r, "groups (wire types 3/4) not supported");
    default:
        return fail(r, "bad wire type");
    }
}

/* ---- writing ---- */

void pb_buf_free(pb_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void pb_put_raw(pb_buf *b, const void *bytes, size_t n)
{
    if (b->failed || n == 0)
        return;
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) {
                b->failed = 1;
                return;
            }
            cap *= 2;
        }
        uint8_t *d = realloc(b->data, cap);
        if (!d) {
            b->failed = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
}

void pb_put_varint(pb_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    int n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            tmp[n] |= 0x80;
        n++;
    } while (v);
    pb_put_raw(b, tmp, (size_t)n);
}

void pb_put_tag(pb_buf *b, uint32_t num, int wire)
{
    pb_put_varint(b, ((uint64_t)num << 3) | (uint64_t)wire);
}

void pb_put_uint(pb_buf *b, uint32_t num, uint64_t v)
{
    pb_put_tag(b, num, PB_VARINT);
    pb_put_varint(b, v);
}

void pb_put_bytes(pb_buf *b, uint32_t num, const void *bytes, size_t n)
{
    pb_put_tag(b, num, PB_LEN);
    pb_put_varint(b, n);
    pb_put_raw(b, bytes, n);
}

void pb_put_string(pb_buf *b, uint32_t num, const char *s)
{
    pb_put_bytes(b, num, s, strlen(s));
}

void pb_put_float(pb_buf *b, uint32_t num, float v)
{
    uint32_t u;
    uint8_t p[4];
    memcpy(&u, &v, 4);
    pb_le32(p, u);
    pb_put_tag(b, num, PB_FIXED32);
    pb_put_raw(b, p, 4);
}

void pb_put_message(pb_buf *b, uint32_t num, pb_buf *sub)
{
    if (sub->failed)
        b->failed = 1;
    pb_put_bytes(b, num, sub->data, sub->len);
    pb_buf_free(sub);
    sub->failed = 0;
}

void pb_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void pb_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
