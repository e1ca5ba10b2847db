/*
 * budget.c - what a photo may cost to decode: memory, shared between concurrent
 * decodes, and the PNG text chunks that cost CPU before a single pixel is read.
 *
 * Why estimates from the header: a 75 KB GIF of 10000 x 10000 pixels decodes
 * into a 400 MB frame buffer, a progressive JPEG keeps every DCT coefficient of
 * the whole image (2 bytes per sample), an interlaced PNG is read whole. Their
 * cost is known from the header before decoding starts, so a photo that would
 * cost more than the node allows is refused at once, and the others wait their
 * turn for the shared budget instead of all decoding together (eight such
 * uploads at once took 2.7 GB before this existed).
 *
 * PNG text chunks (tEXt, zTXt, iTXt) are metadata Basira drops anyway; libpng
 * inflates every zTXt chunk each time the header is read (three times per
 * upload), so ten 50 MB zTXt bombs in a 520 KB file cost 22 s of CPU. They are
 * checked (count, size, inflated size capped) and removed before libvips sees
 * the file.
 */
#include "intake_internal.h"

#include "core/i18n.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

struct basira_decode_budget {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    size_t total, used;
};

size_t basira_decode_budget_default_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    size_t ram = pages > 0 && page > 0 ? (size_t)pages * (size_t)page : (size_t)1 << 30;
    size_t b = ram / 16;
    if (b < BASIRA_DECODE_BUDGET_MIN)
        b = BASIRA_DECODE_BUDGET_MIN;
    if (b > BASIRA_DECODE_BUDGET_MAX)
        b = BASIRA_DECODE_BUDGET_MAX;
    return b;
}

basira_code basira_decode_budget_new(size_t bytes, basira_decode_budget **out, basira_error *err)
{
    if (!out)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    *out = NULL;
    if (bytes == 0)
        bytes = basira_decode_budget_default_bytes();
    basira_decode_budget *b = calloc(1, sizeof *b);
    if (!b)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int r1 = pthread_mutex_init(&b->lock, NULL);
    int r2 = pthread_cond_init(&b->freed, &ca);
    pthread_condattr_destroy(&ca);
    if (r1 || r2) {
        if (!r1)
            pthread_mutex_destroy(&b->lock);
        if (!r2)
            pthread_cond_destroy(&b->freed);
        free(b);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    b->total = bytes;
    *out = b;
    return BASIRA_OK;
}

void basira_decode_budget_free(basira_decode_budget *b)
{
    if (!b)
        return;
    pthread_cond_destroy(&b->freed);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

size_t basira_decode_budget_total(const basira_decode_budget *b)
{
    return b ? b->total : 0;
}

size_t basira_decode_budget_in_use(basira_decode_budget *b)
{
    if (!b)
        return 0;
    pthread_mutex_lock(&b->lock);
    size_t n = b->used;
    pthread_mutex_unlock(&b->lock);
    return n;
}

basira_code intake_budget_acquire(basira_decode_budget *b, size_t bytes,
                                  const struct timespec *deadline, basira_error *err)
{
    if (!b)
        return BASIRA_OK;
    if (bytes > b->total)
        bytes = b->total; /* callers refuse larger ones first; never wait forever */
    pthread_mutex_lock(&b->lock);
    int r = 0;
    while (b->used + bytes > b->total && r != ETIMEDOUT)
        r = pthread_cond_timedwait(&b->freed, &b->lock, deadline);
    int got = b->used + bytes <= b->total;
    if (got)
        b->used += bytes;
    pthread_mutex_unlock(&b->lock);
    if (!got)
        return basira_error_setm(err, BASIRA_E_LIMIT,
                                 N_("the node is busy analysing other large photos; send this one "
                                    "again in a minute"));
    return BASIRA_OK;
}

basira_code basira_decode_budget_reserve(basira_decode_budget *b, size_t bytes, double seconds,
                                         basira_error *err)
{
    if (!(seconds >= 0))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    struct timespec t;
    intake_deadline_in(seconds, &t);
    return intake_budget_acquire(b, bytes, &t, err);
}

void basira_decode_budget_release(basira_decode_budget *b, size_t bytes)
{
    intake_budget_release(b, bytes);
}

int intake_past(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

void intake_deadline_in(double seconds, struct timespec *t)
{
    clock_gettime(CLOCK_MONOTONIC, t);
    double whole = floor(seconds);
    t->tv_sec += (time_t)whole;
    t->tv_nsec += (long)((seconds - whole) * 1e9);
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

void intake_budget_release(basira_decode_budget *b, size_t bytes)
{
    if (!b)
        return;
    if (bytes > b->total)
        bytes = b->total;
    pthread_mutex_lock(&b->lock);
    b->used = b->used >= bytes ? b->used - bytes : 0;
    pthread_cond_broadcast(&b->freed);
    pthread_mutex_unlock(&b->lock);
}

/* ---- memory a decode needs, from the header -------------------------------- */

static int loader_is(const char *loader, const char *prefix)
{
    return !strncmp(loader, prefix, strlen(prefix));
}

size_t intake_decode_cost(const char *loader, int w, int h, int bands, int bytes_per_sample,
                          int interlaced, int max_side)
{
    if (w <= 0 || h <= 0)
        return 0;
    if (bands < 1)
        bands = 3;
    if (bands > 4)
        bands = 4;
    if (bytes_per_sample < 1)
        bytes_per_sample = 1;
    size_t px = (size_t)w * (size_t)h;
    /*
     * Streamed decodes (baseline JPEG with DCT shrink, plain PNG, WebP scaled
     * decoding): a window of a few hundred lines for the decoder and the resize,
     * plus the result. Measured on 10000 x 10000 files (one thread): baseline
     * JPEG 41 MB of RSS for the whole process, plain PNG and TIFF 86 MB.
     */
    size_t stream = (size_t)w * (size_t)bands * (size_t)bytes_per_sample * 2 * 512 +
                    (size_t)max_side * (size_t)max_side * 3 * 2 + ((size_t)16 << 20);
    size_t whole = px * (size_t)bands * (size_t)bytes_per_sample; /* one full frame */
    if (loader_is(loader, "VipsForeignLoadJpeg"))
        /* Progressive: every coefficient of the image, 2 bytes per sample (333 MB measured). */
        return interlaced ? px * (size_t)bands * 2 + stream : stream;
    if (loader_is(loader, "VipsForeignLoadPng"))
        /* Interlaced: read whole (364 MB measured). */
        return interlaced ? whole + whole / 4 + stream : stream;
    if (loader_is(loader, "VipsForeignLoadNsgif") || loader_is(loader, "VipsForeignLoadGif"))
        /* The whole RGBA frame plus its palette indices (492 MB measured). */
        return px * 5 + stream;
    if (loader_is(loader, "VipsForeignLoadHeif"))
        /* libheif decodes the whole image: YUV planes then interleaved RGB(A). */
        return px * (size_t)bands + px * 3 / 2 + stream;
    if (loader_is(loader, "VipsForeignLoadTiff"))
        /* A strip or tile may be as large as the image: count it whole. */
        return whole + stream;
    return stream; /* WebP: scaled while decoding */
}

/* ---- PNG text chunks ------------------------------------------------------- */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Inflate at most cap bytes of a zlib stream; 1 when it would inflate to more. */
static int inflates_past(const uint8_t *z, size_t n, size_t cap)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit(&zs) != Z_OK)
        return 1;
    unsigned char out[16384];
    size_t total = 0;
    zs.next_in = (Bytef *)z;
    zs.avail_in = (uInt)(n > UINT32_MAX ? UINT32_MAX : n);
    int r = Z_OK, over = 0;
    while (r == Z_OK) {
        zs.next_out = out;
        zs.avail_out = sizeof out;
        r = inflate(&zs, Z_NO_FLUSH);
        total += sizeof out - zs.avail_out;
        if (total > cap) {
            over = 1;
            break;
        }
        if (r == Z_BUF_ERROR || (r == Z_OK && zs.avail_out == sizeof out))
            break; /* no progress: truncated stream, dropped anyway */
    }
    inflateEnd(&zs);
    return over;
}

/* The compressed text of a zTXt or compressed iTXt chunk, NULL when there is none. */
static const uint8_t *compressed_text(const uint8_t *type, const uint8_t *d, size_t n, size_t *zlen)
{
    const uint8_t *nul = memchr(d, '\0', n);
    if (!nul)
        return NULL;
    size_t off = (size_t)(nul - d) + 1;
    if (!memcmp(type, "zTXt", 4)) {
        if (off + 1 > n)
            return NULL;
        *zlen = n - off - 1;
        return d + off + 1;
    }
    /* iTXt: keyword\0 flag method language\0 translated-keyword\0 text */
    if (off + 2 > n || d[off] != 1)
        return NULL;
    off += 2;
    for (int field = 0; field < 2; field++) {
        const uint8_t *e = off < n ? memchr(d + off, '\0', n - off) : NULL;
        if (!e)
            return NULL;
        off = (size_t)(e - d) + 1;
    }
    *zlen = n - off;
    return d + off;
}

basira_code intake_png_strip_text(const uint8_t *data, size_t len, uint8_t **copy, size_t *copy_len,
                                  basira_error *err)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    *copy = NULL;
    *copy_len = 0;
    if (len < 8 || memcmp(data, sig, 8))
        return BASIRA_OK;
    size_t count = 0, text_bytes = 0;
    /* First pass: the limits, and whether anything needs removing. */
    for (size_t p = 8; p + 12 <= len;) {
        uint32_t n = be32(data + p);
        if (n > len - p - 12)
            break; /* malformed: left to the decoder to refuse */
        const uint8_t *type = data + p + 4;
        if (!memcmp(type, "tEXt", 4) || !memcmp(type, "zTXt", 4) || !memcmp(type, "iTXt", 4)) {
            count++;
            text_bytes += n;
            size_t zlen = 0;
            const uint8_t *z = compressed_text(type, data + p + 8, n, &zlen);
            if (count > BASIRA_PNG_MAX_TEXT_CHUNKS || text_bytes > BASIRA_PNG_MAX_TEXT_BYTES ||
                (z && inflates_past(z, zlen, BASIRA_PNG_MAX_TEXT_BYTES)))
                return basira_error_setm(err, BASIRA_E_IMAGE_TOO_LARGE,
                                         N_("the photo carries too much embedded text (at most %d "
                                            "text entries of %d KiB in all); send the photo as "
                                            "the camera took it"),
                                         BASIRA_PNG_MAX_TEXT_CHUNKS,
                                         BASIRA_PNG_MAX_TEXT_BYTES / 1024);
        }
        if (!memcmp(type, "IEND", 4))
            break;
        p += (size_t)n + 12;
    }
    if (count == 0)
        return BASIRA_OK;
    uint8_t *out = malloc(len);
    if (!out)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    memcpy(out, data, 8);
    size_t o = 8, p = 8;
    while (p + 12 <= len) {
        uint32_t n = be32(data + p);
        if (n > len - p - 12)
            break;
        const uint8_t *type = data + p + 4;
        size_t whole = (size_t)n + 12;
        if (memcmp(type, "tEXt", 4) && memcmp(type, "zTXt", 4) && memcmp(type, "iTXt", 4)) {
            memcpy(out + o, data + p, whole);
            o += whole;
        }
        p += whole;
        if (!memcmp(type, "IEND", 4))
            break;
    }
    /* Whatever follows (trailing bytes, a malformed tail) is kept for the decoder to judge. */
    memcpy(out + o, data + p, len - p);
    o += len - p;
    *copy = out;
    *copy_len = o;
    return BASIRA_OK;
}
