/* Assertion failure and allocation wrappers: the only place base/ may print and abort. */
#include "base/assert.h"

#include <stdio.h>
#include <stdlib.h>

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
