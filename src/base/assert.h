/*
 * Assertions, on in every build (STYLE.md). ASSERT guards what our own code guarantees;
 * input from the network, disk or config is validated with errors, never asserted.
 * DEBUG_ASSERT is for O(n) checks, compiled only with -DCAPKV_DEBUG (debug, sim, sanitize).
 */
#ifndef CAPKV_BASE_ASSERT_H
#define CAPKV_BASE_ASSERT_H

#include <stdnoreturn.h>

noreturn void base_assert_fail(const char *expr, const char *file, int line);

#define ASSERT(expr) ((expr) ? (void)0 : base_assert_fail(#expr, __FILE__, __LINE__))
#ifdef CAPKV_DEBUG
#define DEBUG_ASSERT(expr) ASSERT(expr)
#else
#define DEBUG_ASSERT(expr) ((void)0)
#endif
#define UNREACHABLE() base_assert_fail("unreachable", __FILE__, __LINE__)
#define STATIC_ASSERT(expr, why) _Static_assert(expr, why)

/* Out of memory is not an error we recover from: abort with a message. */
void *base_malloc(unsigned long bytes);
void *base_calloc(unsigned long count, unsigned long bytes);
void *base_realloc(void *ptr, unsigned long bytes);
/* Memory mapped from the system (zeroed) and given back whole by base_unmap: for big
 * buffers whose memory must return when they go, not stay in the heap. */
void *base_map(unsigned long bytes);
void base_unmap(void *ptr, unsigned long bytes);

#endif
