/*
 * half.c - IEEE half precision <-> float32, for the F16 tensors of model files
 * (safetensors.c): exact in one direction, rounded to nearest even in the other.
 */
#include "nn/safetensors.h"

#include <stdint.h>
#include <string.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define NN_ST_F16C 1
#endif

static float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* IEEE half -> float, exactly (every half is representable as a float). */
static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0) {
        /* zero or subnormal: man * 2^-24 */
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    if (exp == 31)
        return f32_from_bits(sign | 0x7f800000u | (man << 13));
    return f32_from_bits(sign | ((exp + 112u) << 23) | (man << 13));
}

#ifdef NN_ST_F16C
/*
 * The F16 tensors of a model, eight at a time with the processor's own conversion
 * (F16C, on every x86-64 made since 2012; Debian builds for plain x86-64, so this is
 * chosen at run time). A one-photo triage converts the 2.8 M weights of the bundled
 * clinical model and its detector: 6 ms one at a time, under 1 ms here (perf, AVX2
 * machine). Every finite half and infinity converts exactly as f16_to_f32 does; a block
 * holding a NaN is left to it too, so that a NaN's payload bits come out the same
 * (the instruction would quieten a signalling one). Returns how many it converted.
 */
/* AVX with the system's support for its registers (the compiler's check), and F16C
 * (CPUID leaf 1, ECX bit 29: not every compiler's __builtin_cpu_supports knows it). */
static int has_f16c(void)
{
    unsigned a, b, c, d;
    return __builtin_cpu_supports("avx") && __get_cpuid(1, &a, &b, &c, &d) && (c >> 29 & 1u);
}

__attribute__((target("avx,f16c"))) static size_t f16_to_f32_f16c(const unsigned char *s,
                                                                  float *dst, size_t n)
{
    const __m128i magnitude = _mm_set1_epi16(0x7fff), inf = _mm_set1_epi16(0x7c00);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(s + 2 * i));
        /* NaN: magnitude above infinity's (both fit a signed 16-bit compare) */
        if (_mm_movemask_epi8(_mm_cmpgt_epi16(_mm_and_si128(h, magnitude), inf)))
            break; /* this block and the rest the plain way */
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    return i;
}
#endif

uint16_t nn_st_f32_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t exp = (u >> 23) & 0xffu, man = u & 0x7fffffu;
    if (exp == 0xffu) /* infinity stays; a NaN stays a (quiet) NaN */
        return (uint16_t)(sign | 0x7c00u | (man ? 0x200u : 0));
    int e = (int)exp - 127 + 15;
    if (e >= 31)
        return (uint16_t)(sign | 0x7c00u); /* too large: infinity */
    if (e <= 0) {
        /* A subnormal half (or zero): the mantissa with its implicit 1, shifted right by
         * 14 - e places (24 - 10 - e), rounded to nearest even. */
        if (e < -10)
            return sign;
        uint32_t m = man | 0x800000u;
        int shift = 14 - e;
        uint32_t h = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1u)))
            h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fffu;
    /* Round to nearest, ties to even; a carry into the exponent is right (up to infinity). */
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        h++;
    return (uint16_t)(sign | h);
}

void nn_half_to_f32(const unsigned char *le, float *dst, size_t n)
{
    size_t i = 0;
#ifdef NN_ST_F16C
    if (has_f16c())
        i = f16_to_f32_f16c(le, dst, n);
#endif
    for (; i < n; i++)
        dst[i] = f16_to_f32((uint16_t)(le[2 * i] | le[2 * i + 1] << 8));
}
