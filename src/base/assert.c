/* Assertion failure and allocation wrappers: the only place base/ may print and abort. */
#include "base/assert.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

void base_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "capkv: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}

static noreturn void base_out_of_memory(unsigned long bytes) {
    fprintf(stderr, "capkv: out of memory allocating %lu bytes\n", bytes);
    abort();
}

void *base_malloc(unsigned long bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (p == NULL) base_out_of_memory(bytes);
    return p;
}

void *base_calloc(unsigned long count, unsigned long bytes) {
    void *p = calloc(count ? count : 1, bytes ? bytes : 1);
    if (p == NULL) base_out_of_memory(count * bytes);
    return p;
}

void *base_realloc(void *ptr, unsigned long bytes) {
    void *p = realloc(ptr, bytes ? bytes : 1);
    if (p == NULL) base_out_of_memory(bytes);
    return p;
}

void *base_map(unsigned long bytes) {
    void *p =
        mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) base_out_of_memory(bytes);
    return p;
}

void base_unmap(void *ptr, unsigned long bytes) {
    if (ptr != NULL && munmap(ptr, bytes ? bytes : 1) != 0)
        base_assert_fail("munmap of a base_map region", __FILE__, __LINE__);
}
