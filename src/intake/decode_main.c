/*
 * decode_main.c - basira-decode, the memory-limited process that decodes one
 * HEIC/AVIF photo for intake (see decode_helper.c for why and for the protocol).
 *
 *   basira-decode MAX_FILE_BYTES MAX_PIXELS MIN_SIDE MAX_SIDE MAX_DECODE_BYTES
 *                 MAX_MILLISECONDS MEMORY_LIMIT  < photo  > header + RGB pixels
 *
 * It caps its own memory (RLIMIT_DATA: heap and every private writable
 * mapping, where the codecs' frames go) and CPU time (RLIMIT_CPU) before
 * libvips starts, reads at most MAX_FILE_BYTES from stdin, runs the ordinary
 * intake code in this process, and writes the answer. A decoder that asks for
 * more than the limit gets NULL from malloc (and fails) or dies; either way the
 * node that started it only sees a refusal.
 */
#include "basira/paths.h"
#include "intake_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <vips/vips.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define SANITIZED 1
#endif
#endif

static int parse_u64(const char *s, unsigned long long max, unsigned long long *v)
{
    char *end = NULL;
    errno = 0;
    if (!s || !*s || *s == '-')
        return -1;
    *v = strtoull(s, &end, 10);
    return (errno || *end || *v > max) ? -1 : 0;
}

static int write_all(const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t k = write(1, b, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

/* The whole of stdin, refused (NULL) past max bytes. */
static uint8_t *read_input(size_t max, size_t *len)
{
    size_t cap = 65536, n = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return NULL;
    for (;;) {
        if (n == cap) {
            if (cap > max) {
                free(buf);
                return NULL;
            }
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t k = read(0, buf + n, cap - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            free(buf);
            return NULL;
        }
        if (k == 0)
            break;
        n += (size_t)k;
        if (n > max) {
            free(buf);
            return NULL;
        }
    }
    *len = n;
    return buf;
}

static int answer(basira_code code, const basira_image *img)
{
    intake_helper_header h = {.magic = INTAKE_HELPER_MAGIC, .code = (int32_t)code};
    if (img) {
        h.width = basira_image_width(img);
        h.height = basira_image_height(img);
        h.orig_width = basira_image_original_width(img);
        h.orig_height = basira_image_original_height(img);
    }
    if (write_all(&h, sizeof h))
        return -1;
    if (img && write_all(basira_image_pixels(img), (size_t)h.width * (size_t)h.height * 3))
        return -1;
    return 0;
}

static void limit(int resource, rlim_t value)
{
    struct rlimit rl = {.rlim_cur = value, .rlim_max = value};
    if (setrlimit(resource, &rl) != 0)
        _exit(3); /* fail closed: never decode without the limits */
}

int main(int argc, char **argv)
{
    unsigned long long v[7];
    if (argc != 8)
        return 2;
    for (int i = 0; i < 7; i++)
        if (parse_u64(argv[i + 1], ULLONG_MAX, &v[i]))
            return 2;
    if (v[2] > INT_MAX || v[3] > INT_MAX || v[0] > SIZE_MAX || v[4] > SIZE_MAX || v[6] > SIZE_MAX ||
        v[5] == 0 || v[5] > 3600000)
        return 2;
    double seconds = (double)v[5] / 1000;

    /* Limits first, before any library allocates. */
    limit(RLIMIT_CORE, 0);
    /* No RLIMIT_FSIZE: libvips may spill a large decode to a temporary file. */
    limit(RLIMIT_CPU, (rlim_t)ceil(seconds) + 1);
#ifndef SANITIZED
    limit(RLIMIT_DATA, (rlim_t)v[6]);
#else
    /*
     * AddressSanitizer reserves terabytes of shadow memory at start-up, so a
     * memory limit would stop this program before main(). Sanitizer builds run
     * without it; the tests then check the refusal of the ispe-vs-bitstream lie
     * (libvips's "bad image dimensions on decode") and the node's own memory.
     */
    (void)v[6];
#endif
    /* The same private libvips module folder as `basira` (src/cli/main.c): only the
     * HEIF plugin is loaded. */
    char home[4096];
    if (!getenv("VIPSHOME") && basira_data_file("vipshome", home, sizeof home, NULL) == BASIRA_OK)
        setenv("VIPSHOME", home, 0);
    if (VIPS_INIT(argv[0]))
        return 3;
    vips_concurrency_set(1);

    size_t len = 0;
    uint8_t *data = read_input((size_t)v[0], &len);
    if (!data)
        return answer(BASIRA_E_IMAGE_TOO_LARGE, NULL) ? 4 : 0;
    basira_intake_options o;
    basira_intake_options_default(&o);
    o.max_file_bytes = (size_t)v[0];
    o.max_pixels = (uint64_t)v[1];
    o.min_side = (int)v[2];
    o.max_side = (int)v[3];
    o.max_decode_bytes = (size_t)v[4];
    o.max_seconds = seconds;
    o.decode_helper = intake_in_process;
    basira_image *img = NULL;
    basira_error err;
    basira_code rc = basira_image_load_buffer(data, len, &o, &img, &err);
    free(data);
    int bad = answer(rc, rc == BASIRA_OK ? img : NULL);
    basira_image_free(img);
    /* _exit: nothing left to clean, and LeakSanitizer must not report libvips's
     * start-up allocations through a failing exit status. */
    _exit(bad ? 4 : 0);
}
