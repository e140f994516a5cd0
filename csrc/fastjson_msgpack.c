/* fastjson_msgpack.c: the fast path's msgpack reader (see fastjson.h). Every
 * read is bounds-checked against the chunk's end. */
#include "fastjson.h"

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int k = 0; k < n; k++)
        v = (v << 8) | p[k];
    return v;
}

/* Reads one item's header; strings, bins and exts are consumed whole,
 * arrays and maps only up to their first element. -1 when malformed. */
int fj_read_item(struct ctx *c, struct item *it)
{
    const uint8_t *end = c->end;
    if (c->p >= end)
        return -1;
    uint8_t b = *c->p++;
    size_t width = 0, avail;
    if (b <= 0x7f) { it->type = T_UINT; it->u = b; return 0; }
    if (b >= 0xe0) { it->type = T_INT; it->i = (int8_t)b; return 0; }
    if (b <= 0x8f) { it->type = T_MAP; it->len = b & 0x0f; return 0; }
    if (b <= 0x9f) { it->type = T_ARRAY; it->len = b & 0x0f; return 0; }
    if (b <= 0xbf) { it->type = T_STR; it->len = b & 0x1f; goto payload; }
    avail = (size_t)(end - c->p);
    switch (b) {
    case 0xc0: it->type = T_NIL; return 0;
    case 0xc2: case 0xc3: it->type = T_BOOL; it->u = b == 0xc3; return 0;
    case 0xc4: case 0xc5: case 0xc6:
        it->type = T_BIN; width = (size_t)1 << (b - 0xc4); goto sized;
    case 0xd9: case 0xda: case 0xdb:
        it->type = T_STR; width = (size_t)1 << (b - 0xd9); goto sized;
    case 0xc7: case 0xc8: case 0xc9:
        width = (size_t)1 << (b - 0xc7);
        if (avail < width + 1)
            return -1;
        it->type = T_EXT;
        it->len = (uint32_t)be(c->p, (int)width);
        it->ext = (int8_t)c->p[width];
        c->p += width + 1;
        goto payload;
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
        if (avail < 1)
            return -1;
        it->type = T_EXT;
        it->len = 1u << (b - 0xd4);
        it->ext = (int8_t)*c->p++;
        goto payload;
    case 0xca: case 0xcb: {
        width = b == 0xca ? 4 : 8;
        if (avail < width)
            return -1;
        uint64_t bits = be(c->p, (int)width);
        if (width == 4) {
            float f32;
            uint32_t b32 = (uint32_t)bits;
            memcpy(&f32, &b32, 4);
            it->f = f32;
        } else {
            memcpy(&it->f, &bits, 8);
        }
        c->p += width;
        it->type = T_FLOAT;
        return 0;
    }
    case 0xcc: case 0xcd: case 0xce: case 0xcf:
        width = (size_t)1 << (b - 0xcc);
        if (avail < width)
            return -1;
        it->type = T_UINT;
        it->u = be(c->p, (int)width);
        c->p += width;
        return 0;
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
        width = (size_t)1 << (b - 0xd0);
        if (avail < width)
            return -1;
        uint64_t raw = be(c->p, (int)width);
        int shift = 64 - 8 * (int)width;
        int64_t v = (int64_t)(raw << shift) >> shift; /* sign-extend */
        c->p += width;
        if (v >= 0) { it->type = T_UINT; it->u = (uint64_t)v; }
        else { it->type = T_INT; it->i = v; }
        return 0;
    }
    case 0xdc: case 0xdd: case 0xde: case 0xdf:
        width = (b & 1) ? 4 : 2;
        if (avail < width)
            return -1;
        it->type = b <= 0xdd ? T_ARRAY : T_MAP;
        it->len = (uint32_t)be(c->p, (int)width);
        c->p += width;
        /* every element takes at least one byte: reject impossible counts early */
        if ((uint64_t)it->len * (it->type == T_MAP ? 2 : 1) > (uint64_t)(end - c->p))
            return -1;
        return 0;
    default: /* 0xc1 is never used */
        return -1;
    }
sized:
    if (avail < width)
        return -1;
    it->len = (uint32_t)be(c->p, (int)width);
    c->p += width;
payload:
    if ((size_t)(end - c->p) < it->len)
        return -1;
    it->ptr = c->p;
    c->p += it->len;
    return 0;
}
