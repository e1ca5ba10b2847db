/*
 * resample.c - downsizing 8-bit RGB exactly as libvips 8.14 does it, without libvips.
 *
 * Why a copy of libvips' arithmetic: every photo Basira scores is sized by
 * vips_shrink() and vips_reduce() (Lanczos-3), and the bundled models were
 * calibrated and certified on those pixels. The one-photo program
 * (`basira-triage`) must not link libvips (its hundred shared libraries cost
 * about 30 ms of a 100 ms budget to load, issue 17), yet it must give the same
 * risk to the same photo as the clinic node. So these functions reproduce
 * libvips 8.14's C paths (shrinkv.c, shrinkh.c, reducev.cpp, reduceh.cpp,
 * resize.c; its liborc path is switched off in Basira) operation by operation,
 * rounding by rounding. tests/intake/test_resample.c compares them with libvips
 * byte for byte on hundreds of sizes; a libvips upgrade that changes its
 * arithmetic fails that test rather than silently moving the models' inputs.
 *
 * All images here are packed 3-band 8-bit (RGB); results are malloc()ed and
 * owned by the caller. Every function returns 0, or -1 when out of memory or
 * when the factors are out of range (libvips' errors for the same inputs).
 */
#include "intake_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BANDS 3
_Static_assert(BANDS == 3, "the loops below are written for RGB");
/* libvips' interpolate.h: masks are tabulated at 1/64 pixel steps and applied in
 * 4.12 fixed point. */
#define TRANSFORM_SCALE 64
#define INTERPOLATE_SHIFT 12
#define INTERPOLATE_SCALE (1 << INTERPOLATE_SHIFT)
/* libvips' presample.h: the longest mask it accepts. */
#define MAX_POINT 2000

/* VIPS_ROUND_UINT: round half up, as a C cast. */
static int round_uint(double v)
{
    return (int)(v + 0.5);
}

static uint8_t *alloc_rgb(int w, int h)
{
    return malloc((size_t)w * (size_t)h * BANDS);
}

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/*
 * The rounded average (sum + n / 2) / n of n 8-bit values, a whole line at a time,
 * vectorised: one integer division per sample costs tens of cycles (the box shrinks
 * do about a million per resize), and a look-up table of quotients, one load and one
 * byte store per sample, still was three quarters of a shrink's time. In float the
 * quotient is exact: with a = sum + n / 2 < 2^24 and a / n < 256, the division rounds
 * a / n by at most 256 * 2^-24, less than 1 / n, the least distance from a non-integer
 * a / n to the next integer, for every n up to AVERAGE_LINE_MAX; truncation then gives
 * the integer quotient. (tests/intake/test_resample.c checks every sum for many n.)
 * Larger factors (a photo 4096 times wider than its copy) divide in integers.
 */
#define AVERAGE_LINE_MAX 4096

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
static void
average_line(uint8_t *restrict q, const int *restrict sum, size_t len, int n)
{
    if (n > AVERAGE_LINE_MAX) {
        for (size_t x = 0; x < len; x++)
            q[x] = (uint8_t)((sum[x] + n / 2) / n);
        return;
    }
    const float fn = (float)n;
    const int half = n / 2;
    for (size_t x = 0; x < len; x++)
        q[x] = (uint8_t)(int)((float)(sum[x] + half) / fn);
}

/* sum[x] += p[x], vectorised (restrict: the 8-bit line cannot alias the sums). */
static void add_line(int *restrict sum, const uint8_t *restrict p, size_t n)
{
    for (size_t x = 0; x < n; x++)
        sum[x] += p[x];
}

int intake_shrinkv(const uint8_t *in, int w, int h, int vshrink, int ceil_size, uint8_t **out,
                   int *out_h)
{
    if (vshrink < 1 || w <= 0 || h <= 0)
        return -1;
    int oh = ceil_size ? (int)ceil((double)h / vshrink) : round_uint((double)h / vshrink);
    if (oh <= 0)
        return -1; /* "image has shrunk to nothing" */
    uint8_t *o = alloc_rgb(w, oh);
    int *sum = malloc((size_t)w * BANDS * sizeof *sum);
    if (!o || !sum) {
        free(o);
        free(sum);
        return -1;
    }
    size_t row = (size_t)w * BANDS;
    for (int y = 0; y < oh; y++) {
        memset(sum, 0, row * sizeof *sum);
        /* The height is padded to a multiple of the factor by repeating the last
         * line (vips_embed, extend copy). */
        for (int k = 0; k < vshrink; k++) {
            add_line(sum, in + (size_t)clampi(y * vshrink + k, 0, h - 1) * row, row);
        }
        uint8_t *q = o + (size_t)y * row;
        average_line(q, sum, row, vshrink);
    }
    free(sum);
    *out = o;
    *out_h = oh;
    return 0;
}

int intake_shrinkh(const uint8_t *in, int w, int h, int hshrink, int ceil_size, uint8_t **out,
                   int *out_w)
{
    if (hshrink < 1 || w <= 0 || h <= 0)
        return -1;
    int ow = ceil_size ? (int)ceil((double)w / hshrink) : round_uint((double)w / hshrink);
    if (ow <= 0)
        return -1;
    uint8_t *o = alloc_rgb(ow, h);
    int *sum = malloc((size_t)ow * BANDS * sizeof *sum);
    if (!o || !sum) {
        free(o);
        free(sum);
        return -1;
    }
    for (int y = 0; y < h; y++) {
        const uint8_t *p = in + (size_t)y * w * BANDS;
        uint8_t *q = o + (size_t)y * ow * BANDS;
        for (int x = 0; x < ow; x++) {
            int s0 = 0, s1 = 0, s2 = 0;
            if ((x + 1) * hshrink <= w) {
                const uint8_t *px = p + (size_t)x * hshrink * BANDS;
                for (int k = 0; k < hshrink; k++, px += BANDS) {
                    s0 += px[0];
                    s1 += px[1];
                    s2 += px[2];
                }
            } else {
                /* The width is padded on the right by repeating the last column. */
                for (int k = 0; k < hshrink; k++) {
                    const uint8_t *px = p + (size_t)clampi(x * hshrink + k, 0, w - 1) * BANDS;
                    s0 += px[0];
                    s1 += px[1];
                    s2 += px[2];
                }
            }
            sum[x * BANDS] = s0;
            sum[x * BANDS + 1] = s1;
            sum[x * BANDS + 2] = s2;
        }
        average_line(q, sum, (size_t)ow * BANDS, hshrink);
    }
    free(sum);
    *out = o;
    *out_w = ow;
    return 0;
}

/* templates.h calculate_coefficients_lanczos(), a = 3. */
static void lanczos3_mask(double *c, double shrink, double x)
{
    const int a = 3;
    const int n_points = 2 * (int)rint(a * shrink) + 1;
    const double half = x + n_points / 2.0 - 1;
    double sum = 0;
    for (int i = 0; i < n_points; i++) {
        const double xp = (i - half) / shrink;
        double l;
        if (xp == 0.0)
            l = 1.0;
        else if (xp < -a || xp > a)
            l = 0.0;
        else
            l = (double)a * sin(M_PI * xp) * sin(M_PI * xp / (double)a) / (M_PI * M_PI * xp * xp);
        c[i] = l;
        sum += l;
    }
    for (int i = 0; i < n_points; i++)
        c[i] /= sum;
}

/*
 * The 65 integer masks of one reduce (reducev.cpp and reduceh.cpp build them the
 * same way): mask t is for a sample t/64 of a pixel past the first tap.
 */
static int *make_masks(double shrink, int n)
{
    int *m = malloc((size_t)(TRANSFORM_SCALE + 1) * (size_t)n * sizeof *m);
    double *c = malloc((size_t)n * sizeof *c);
    if (!m || !c) {
        free(m);
        free(c);
        return NULL;
    }
    for (int t = 0; t <= TRANSFORM_SCALE; t++) {
        lanczos3_mask(c, shrink, (float)t / TRANSFORM_SCALE);
        for (int i = 0; i < n; i++)
            m[t * n + i] = (int)(c[i] * INTERPOLATE_SCALE);
    }
    free(c);
    return m;
}

/* Which of the 65 masks a sample position uses (the same integer steps as libvips). */
static int mask_index(double pos)
{
    const int s = (int)(pos * TRANSFORM_SCALE * 2);
    const int si = s & (TRANSFORM_SCALE * 2 - 1);
    return (si + 1) >> 1;
}

static uint8_t fixed_round_clip(int sum)
{
    int v = (sum + (INTERPOLATE_SCALE >> 1)) >> INTERPOLATE_SHIFT;
    return (uint8_t)clampi(v, 0, 255);
}

/*
 * The set-up both directions share (reducev_build / reduceh_build): the output
 * size, the optional box shrink by the integer part when gap > 0, the mask
 * length and the offset that centres the kept pixels.
 */
typedef struct reduce_plan {
    int out_size;   /* output lines (v) or columns (h) */
    int int_shrink; /* box shrink first (1: none) */
    double shrink;  /* the residual Lanczos factor */
    int n_point;
    double offset;
} reduce_plan;

static int plan_reduce(int in_size, double shrink, double gap, reduce_plan *p)
{
    if (!(shrink >= 1.0))
        return -1; /* "reduce factor should be >= 1.0" */
    p->out_size = round_uint((double)in_size / shrink);
    if (p->out_size <= 0)
        return -1;
    double extra = p->out_size * shrink - in_size;
    p->int_shrink = 1;
    if (gap > 0.0) {
        if (gap < 1.0)
            return -1;
        int s = (int)floor((double)in_size / p->out_size / gap);
        p->int_shrink = s > 1 ? s : 1;
        if (p->int_shrink > 1) {
            shrink /= p->int_shrink;
            extra /= p->int_shrink;
        }
    }
    p->shrink = shrink;
    p->n_point = 2 * (int)rint(3 * shrink) + 1;
    if (p->n_point > MAX_POINT)
        return -1;
    p->offset = (1 + extra) / 2.0 - 1;
    return 0;
}

static uint8_t *copy_rgb(const uint8_t *in, int w, int h)
{
    uint8_t *o = alloc_rgb(w, h);
    if (o)
        memcpy(o, in, (size_t)w * (size_t)h * BANDS);
    return o;
}

/*
 * What a reduce does before its Lanczos pass, the same in both directions
 * (reducev_build / reduceh_build): the plan, the box pre-shrink when gap > 0 (sizes
 * rounded up), and the case where that was all. On return *done holds the result
 * when nothing is left to do; otherwise *in, *w and *h describe what to reduce, and
 * *shrunk owns it when it was made here. Returns 0, or -1.
 */
static int reduce_begin(int vertical, const uint8_t **in, int *w, int *h, double shrink, double gap,
                        reduce_plan *p, uint8_t **shrunk, uint8_t **done)
{
    *shrunk = *done = NULL;
    if (*w <= 0 || *h <= 0 || plan_reduce(vertical ? *h : *w, shrink, gap, p))
        return -1;
    if (p->int_shrink > 1) {
        int r = vertical ? intake_shrinkv(*in, *w, *h, p->int_shrink, 1, shrunk, h)
                         : intake_shrinkh(*in, *w, *h, p->int_shrink, 1, shrunk, w);
        if (r)
            return -1;
        *in = *shrunk;
    }
    if (p->shrink == 1.0) { /* only the box shrink was needed */
        *done = *shrunk ? *shrunk : copy_rgb(*in, *w, *h);
        *shrunk = NULL;
        if (!*done)
            return -1;
    }
    return 0;
}

/*
 * acc[z] += c * r[z]: restrict tells the compiler the 8-bit line cannot alias the
 * sums (a char pointer otherwise may), so it vectorises the loop. Debian builds
 * for plain x86-64 (SSE2), which has no 32-bit vector multiply; an AVX2 copy is
 * chosen at load time where the processor has it (integer sums: both copies give
 * the same bytes).
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
static void
add_scaled(int *restrict acc, const uint8_t *restrict r, int c, size_t n)
{
    for (size_t z = 0; z < n; z++)
        acc[z] += c * r[z];
}

int intake_reducev(const uint8_t *in, int w, int h, double vshrink, double gap, uint8_t **out,
                   int *out_h)
{
    reduce_plan p;
    uint8_t *shrunk = NULL, *done = NULL;
    if (reduce_begin(1, &in, &w, &h, vshrink, gap, &p, &shrunk, &done))
        return -1;
    if (done) {
        *out = done;
        *out_h = h;
        return 0;
    }
    int *masks = make_masks(p.shrink, p.n_point);
    uint8_t *o = alloc_rgb(w, p.out_size);
    const uint8_t **rows = malloc((size_t)p.n_point * sizeof *rows);
    int *acc = malloc((size_t)w * BANDS * sizeof *acc);
    if (!masks || !o || !rows || !acc) {
        free(masks);
        free(o);
        free(rows);
        free(acc);
        free(shrunk);
        return -1;
    }
    /* The input is padded by repeating its edge lines: pad lines above, n_point
     * below (vips_embed, extend copy). */
    const int pad = (int)ceil(p.n_point / 2.0) - 1;
    const size_t row = (size_t)w * BANDS;
    for (int y = 0; y < p.out_size; y++) {
        /* libvips steps Y by the factor from the top of each region it computes;
         * from the top of the image here (the same values, see the header). */
        const double Y = (y + 0.5) * p.shrink - 0.5 - p.offset;
        const int py = (int)Y;
        const int *c = masks + mask_index(Y) * p.n_point;
        for (int i = 0; i < p.n_point; i++)
            rows[i] = in + (size_t)clampi(py + i - pad, 0, h - 1) * row;
        /* Tap by tap over the whole line (integer sums: the order does not change
         * them, and the compiler vectorises this). */
        memset(acc, 0, row * sizeof *acc);
        for (int i = 0; i < p.n_point; i++)
            add_scaled(acc, rows[i], c[i], row);
        uint8_t *q = o + (size_t)y * row;
        for (size_t z = 0; z < row; z++)
            q[z] = fixed_round_clip(acc[z]);
    }
    free(acc);
    free(rows);
    free(masks);
    free(shrunk);
    *out = o;
    *out_h = p.out_size;
    return 0;
}

int intake_reduceh(const uint8_t *in, int w, int h, double hshrink, double gap, uint8_t **out,
                   int *out_w)
{
    reduce_plan p;
    uint8_t *shrunk = NULL, *done = NULL;
    if (reduce_begin(0, &in, &w, &h, hshrink, gap, &p, &shrunk, &done))
        return -1;
    if (done) {
        *out = done;
        *out_w = w;
        return 0;
    }
    int *masks = make_masks(p.shrink, p.n_point);
    uint8_t *o = alloc_rgb(p.out_size, h);
    /* One padded line: pad columns left, n_point right, repeating the edges. */
    const int pad = (int)ceil(p.n_point / 2.0) - 1;
    const int pw = w + p.n_point;
    uint8_t *line = malloc((size_t)pw * BANDS);
    if (!masks || !o || !line) {
        free(masks);
        free(o);
        free(line);
        free(shrunk);
        return -1;
    }
    for (int y = 0; y < h; y++) {
        const uint8_t *src = in + (size_t)y * w * BANDS;
        /* The line itself, then its edge pixels repeated on both sides. */
        memcpy(line + (size_t)pad * BANDS, src, (size_t)w * BANDS);
        for (int x = 0; x < pad; x++)
            memcpy(line + (size_t)x * BANDS, src, BANDS);
        for (int x = pad + w; x < pw; x++)
            memcpy(line + (size_t)x * BANDS, src + (size_t)(w - 1) * BANDS, BANDS);
        uint8_t *q = o + (size_t)y * p.out_size * BANDS;
        /* reduceh_gen steps X along the line from the region's left edge, which is
         * always 0 (libvips computes full-width strips). */
        double X = 0.5 * p.shrink - 0.5 - p.offset;
        for (int x = 0; x < p.out_size; x++) {
            const int ix = (int)X;
            const int *c = masks + mask_index(X) * p.n_point;
            const uint8_t *s = line + (size_t)ix * BANDS;
            int s0 = 0, s1 = 0, s2 = 0;
            for (int i = 0; i < p.n_point; i++) {
                const int ci = c[i];
                const uint8_t *t = s + i * BANDS;
                s0 += ci * t[0];
                s1 += ci * t[1];
                s2 += ci * t[2];
            }
            q[x * BANDS] = fixed_round_clip(s0);
            q[x * BANDS + 1] = fixed_round_clip(s1);
            q[x * BANDS + 2] = fixed_round_clip(s2);
            X += p.shrink;
        }
    }
    free(line);
    free(masks);
    free(shrunk);
    *out = o;
    *out_w = p.out_size;
    return 0;
}

/* The current image of a chain of steps: the input (not owned) or the last step's
 * result (owned), so the input is never copied for nothing. */
typedef struct chain {
    const uint8_t *px;
    uint8_t *owned;
    int w, h;
} chain;

static void chain_take(chain *c, uint8_t *next)
{
    free(c->owned);
    c->owned = next;
    c->px = next;
}

/* The chain's result, owned by the caller. */
static int chain_finish(chain *c, uint8_t **out, int *out_w, int *out_h)
{
    uint8_t *o = c->owned ? c->owned : copy_rgb(c->px, c->w, c->h);
    if (!o)
        return -1;
    *out = o;
    *out_w = c->w;
    *out_h = c->h;
    return 0;
}

int intake_resize_down(const uint8_t *in, int w, int h, double hscale, double vscale, uint8_t **out,
                       int *out_w, int *out_h)
{
    /* resize.c: a scale never drops below one pixel, then a Lanczos-3 reduce
     * with gap 2 (a box shrink first for factors of 4 and more) in each direction
     * that shrinks, vertical first. */
    if (w <= 0 || h <= 0 || !(hscale > 0) || !(vscale > 0) || hscale > 1 || vscale > 1)
        return -1;
    if (hscale < 1.0 / w)
        hscale = 1.0 / w;
    if (vscale < 1.0 / h)
        vscale = 1.0 / h;
    chain c = {in, NULL, w, h};
    uint8_t *next = NULL;
    if (vscale < 1.0) {
        if (intake_reducev(c.px, c.w, c.h, 1.0 / vscale, 2.0, &next, &c.h))
            goto fail;
        chain_take(&c, next);
    }
    if (hscale < 1.0) {
        if (intake_reduceh(c.px, c.w, c.h, 1.0 / hscale, 2.0, &next, &c.w))
            goto fail;
        chain_take(&c, next);
    }
    if (chain_finish(&c, out, out_w, out_h))
        goto fail;
    return 0;
fail:
    free(c.owned);
    return -1;
}

int intake_shrink_reduce(const uint8_t *in, int w, int h, double hs, double vs, uint8_t **out,
                         int *out_w, int *out_h)
{
    /* intake.c's shrink_and_reduce() through libvips: vips_shrink by whole factors
     * (vertical, then horizontal), then vips_reduce (gap 0: Lanczos-3 over the
     * whole residual factor; vertical, then horizontal). */
    if (w <= 0 || h <= 0 || !(hs > 0) || !(vs > 0))
        return -1;
    int hshrink = (int)floor(1.0 / (hs * 2)), vshrink = (int)floor(1.0 / (vs * 2));
    if (hshrink < 1)
        hshrink = 1;
    if (vshrink < 1)
        vshrink = 1;
    double tw = w * hs, th = h * vs; /* the target, unrounded */
    chain c = {in, NULL, w, h};
    uint8_t *next = NULL;
    if (vshrink > 1) {
        if (intake_shrinkv(c.px, c.w, c.h, vshrink, 0, &next, &c.h))
            goto fail;
        chain_take(&c, next);
    }
    if (hshrink > 1) {
        if (intake_shrinkh(c.px, c.w, c.h, hshrink, 0, &next, &c.w))
            goto fail;
        chain_take(&c, next);
    }
    double hr = c.w / tw, vr = c.h / th;
    if (hr < 1)
        hr = 1;
    if (vr < 1)
        vr = 1;
    if (vr != 1) {
        if (intake_reducev(c.px, c.w, c.h, vr, 0.0, &next, &c.h))
            goto fail;
        chain_take(&c, next);
    }
    if (hr != 1) {
        if (intake_reduceh(c.px, c.w, c.h, hr, 0.0, &next, &c.w))
            goto fail;
        chain_take(&c, next);
    }
    if (chain_finish(&c, out, out_w, out_h))
        goto fail;
    return 0;
fail:
    free(c.owned);
    return -1;
}

int intake_extend_copy(const uint8_t *in, int w, int h, int ow, int oh, uint8_t **out)
{
    /* vips_gravity north-west with extend copy: cut, or repeat the last column
     * and line. */
    if (w <= 0 || h <= 0 || ow <= 0 || oh <= 0)
        return -1;
    uint8_t *o = alloc_rgb(ow, oh);
    if (!o)
        return -1;
    for (int y = 0; y < oh; y++) {
        const uint8_t *src = in + (size_t)clampi(y, 0, h - 1) * w * BANDS;
        uint8_t *q = o + (size_t)y * ow * BANDS;
        int n = ow < w ? ow : w;
        memcpy(q, src, (size_t)n * BANDS);
        for (int x = n; x < ow; x++)
            memcpy(q + (size_t)x * BANDS, src + (size_t)(w - 1) * BANDS, BANDS);
    }
    *out = o;
    return 0;
}

int intake_autorot(const uint8_t *in, int w, int h, int orientation, uint8_t **out, int *out_w,
                   int *out_h)
{
    /* autorot.c: orientation 2..8 is a turn (vips_rot: 90 clockwise for 6 and 5,
     * 180 for 3 and 4, 270 for 8 and 7) followed, for 2, 4, 5 and 7, by a
     * left-right flip. */
    int turn = 0, flip = 0;
    switch (orientation) {
    case 2:
        flip = 1;
        break;
    case 3:
        turn = 180;
        break;
    case 4:
        turn = 180;
        flip = 1;
        break;
    case 5:
        turn = 90;
        flip = 1;
        break;
    case 6:
        turn = 90;
        break;
    case 7:
        turn = 270;
        flip = 1;
        break;
    case 8:
        turn = 270;
        break;
    default:
        break;
    }
    int ow = turn == 90 || turn == 270 ? h : w, oh = turn == 90 || turn == 270 ? w : h;
    uint8_t *o = alloc_rgb(ow, oh);
    if (!o)
        return -1;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            int tx = flip ? ow - 1 - x : x; /* the flip comes last */
            int sx, sy;
            switch (turn) {
            case 90:
                sx = y;
                sy = h - 1 - tx;
                break; /* clockwise */
            case 180:
                sx = w - 1 - tx;
                sy = h - 1 - y;
                break;
            case 270:
                sx = w - 1 - y;
                sy = tx;
                break;
            default:
                sx = tx;
                sy = y;
                break;
            }
            memcpy(o + ((size_t)y * ow + x) * BANDS, in + ((size_t)sy * w + sx) * BANDS, BANDS);
        }
    *out = o;
    *out_w = ow;
    *out_h = oh;
    return 0;
}
