/*
 * rng.h - internal: the small deterministic random generator of the training
 * pipeline (SplitMix64). State is a plain uint64_t owned by the caller, so
 * every draw is reproducible from a seed and nothing is global.
 */
#ifndef BASIRA_TRAIN_RNG_H
#define BASIRA_TRAIN_RNG_H

#include <stdint.h>

static inline uint64_t basira_rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double basira_rng_uniform(uint64_t *s)
{
    return (double)(basira_rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform integer in [0, n), n > 0 (Lemire's method would be faster; this is unbiased enough
 * for n far below 2^64 and keeps the code obvious). */
static inline uint64_t basira_rng_below(uint64_t *s, uint64_t n)
{
    return basira_rng_next(s) % n;
}

/* Uniform in [lo, hi). */
static inline double basira_rng_range(uint64_t *s, double lo, double hi)
{
    return lo + (hi - lo) * basira_rng_uniform(s);
}

#endif
