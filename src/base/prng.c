/* xoshiro256** seeded by splitmix64; see prng.h. Pure arithmetic, no I/O. */
#include "base/prng.h"

#include <stddef.h>

#include "base/assert.h"

static uint64_t prng_init_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void prng_init(struct prng *prng, uint64_t seed) {
    ASSERT(prng != NULL);
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) prng->s[i] = prng_init_splitmix64(&x);
    /* splitmix64 is a bijection of a counter: four outputs are never all zero. */
    ASSERT((prng->s[0] | prng->s[1] | prng->s[2] | prng->s[3]) != 0);
}

static uint64_t prng_next_rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

uint64_t prng_next(struct prng *prng) {
    uint64_t *s = prng->s;
    uint64_t result = prng_next_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = prng_next_rotl(s[3], 45);
    return result;
}

uint64_t prng_range(struct prng *prng, uint64_t lo, uint64_t hi) {
    ASSERT(lo < hi);
    uint64_t span = hi - lo;
    /* Rejection sampling: drop the top partial block so every value is equally likely. */
    uint64_t limit = UINT64_MAX - (UINT64_MAX % span);
    uint64_t x;
    do {
        x = prng_next(prng);
    } while (x >= limit);
    uint64_t v = lo + x % span;
    ASSERT(v >= lo && v < hi);
    return v;
}
