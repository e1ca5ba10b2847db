/*
 * png_chunks.h - hostile PNG files for the tests: chunks inserted after IHDR
 * (with_chunks) and zTXt payloads that inflate to a chosen size (ztxt_payload),
 * e.g. the issue 13 bomb (ten zTXt chunks of 50 MB of zeros, 520 KB of file).
 * Include after test.h; link zlib and GLib (libvips).
 */
#ifndef BASIRA_TEST_PNG_CHUNKS_H
#define BASIRA_TEST_PNG_CHUNKS_H

#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef struct blob {
    unsigned char *data;
    size_t len;
} blob;

static inline void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* png with `count` copies of one chunk (type, payload) inserted after IHDR. */
static inline blob with_chunks(const blob *png, const char *type, const unsigned char *d, size_t n,
                               int count)
{
    size_t one = n + 12;
    blob b = {g_malloc(png->len + one * (size_t)count), png->len + one * (size_t)count};
    memcpy(b.data, png->data, 33); /* signature + IHDR */
    unsigned char *p = b.data + 33;
    for (int i = 0; i < count; i++) {
        put32(p, (uint32_t)n);
        memcpy(p + 4, type, 4);
        memcpy(p + 8, d, n);
        uLong crc = crc32(0, (const Bytef *)type, 4);
        crc = crc32(crc, d, (uInt)n);
        put32(p + 8 + n, (uint32_t)crc);
        p += one;
    }
    memcpy(p, png->data + 33, png->len - 33);
    return b;
}

/* A zTXt payload: keyword, method 0, then `raw` bytes of zeros deflated. */
static inline unsigned char *ztxt_payload(size_t raw, size_t *n)
{
    unsigned char *zeros = calloc(1, raw);
    uLongf cl = compressBound(raw);
    unsigned char *p = malloc(cl + 9);
    memcpy(p, "Comment\0\0", 9);
    CHECK(compress2(p + 9, &cl, zeros, raw, 9) == Z_OK);
    free(zeros);
    *n = cl + 9;
    return p;
}

#endif
