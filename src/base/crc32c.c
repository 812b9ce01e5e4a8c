/* CRC-32C: the CPU's crc32 instruction where there is one (x86-64 SSE4.2), else
 * slicing-by-8 tables computed once. Pure; thread-safe after first use. */
#include "base/crc32c.h"

#include <stdbool.h>
#include <string.h>
#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#define CRC32C_POLY_REFLECTED 0x82F63B78u

static uint32_t crc32c_table[8][256];
static bool crc32c_ready;

static void crc32c_init_tables(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t crc = i;
        for (int bit = 0; bit < 8; bit++) {
            crc = (crc & 1) ? (crc >> 1) ^ CRC32C_POLY_REFLECTED : crc >> 1;
        }
        crc32c_table[0][i] = crc;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int t = 1; t < 8; t++) {
            uint32_t prev = crc32c_table[t - 1][i];
            crc32c_table[t][i] = (prev >> 8) ^ crc32c_table[0][prev & 0xFF];
        }
    }
    crc32c_ready = true;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p,
                                                             size_t bytes) {
    uint64_t c = ~crc;
    while (bytes >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = _mm_crc32_u64(c, word);
        p += 8;
        bytes -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (bytes-- > 0) c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}
#endif

static int crc32c_hw_available = -1; /* unknown until the first call */

uint32_t crc32c_extend(uint32_t crc, const void *data, size_t bytes) {
#if defined(__x86_64__)
    if (crc32c_hw_available < 0) crc32c_hw_available = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    if (crc32c_hw_available == 1) return crc32c_hw(crc, data, bytes);
#endif
    return crc32c_soft(crc, data, bytes);
}

uint32_t crc32c_soft(uint32_t crc, const void *data, size_t bytes) {
    if (!crc32c_ready) crc32c_init_tables();
    const uint8_t *p = data;
    crc = ~crc;
    while (bytes >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        crc = crc32c_table[7][lo & 0xFF] ^ crc32c_table[6][(lo >> 8) & 0xFF] ^
              crc32c_table[5][(lo >> 16) & 0xFF] ^ crc32c_table[4][lo >> 24] ^
              crc32c_table[3][p[4]] ^ crc32c_table[2][p[5]] ^ crc32c_table[1][p[6]] ^
              crc32c_table[0][p[7]];
        p += 8;
        bytes -= 8;
    }
    while (bytes-- > 0) crc = (crc >> 8) ^ crc32c_table[0][(crc ^ *p++) & 0xFF];
    return ~crc;
}
