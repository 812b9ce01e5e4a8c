/*
 * A seeded pseudo-random generator for the deterministic core: xoshiro256** (Blackman and
 * Vigna), its state filled by splitmix64 from one 64-bit seed. Same seed, same sequence, on
 * every platform. Not cryptographic. No global state: each user owns its struct prng.
 */
#ifndef CAPKV_BASE_PRNG_H
#define CAPKV_BASE_PRNG_H

#include <stdint.h>

struct prng {
    uint64_t s[4]; /* never all zero */
};

/* Seeds prng (caller-owned storage); any seed, including 0, is valid. */
void prng_init(struct prng *prng, uint64_t seed);
/* The next 64 random bits. */
uint64_t prng_next(struct prng *prng);
/* A number uniform in [lo, hi); requires lo < hi. */
uint64_t prng_range(struct prng *prng, uint64_t lo, uint64_t hi);

#endif
