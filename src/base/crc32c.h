/* CRC-32C (Castagnoli), used on every WAL record, snapshot block and peer frame. */
#ifndef CAPKV_BASE_CRC32C_H
#define CAPKV_BASE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* crc32c_extend(0, data, n) is the CRC of data; extend it with more bytes to continue. */
uint32_t crc32c_extend(uint32_t crc, const void *data, size_t bytes);
/* The portable table version, the same results (exposed so tests compare the two). */
uint32_t crc32c_soft(uint32_t crc, const void *data, size_t bytes);

#endif
