/*
 * lincheck: checks a recorded history (text format of sim/lincheck.h) for linearizability.
 * Usage: lincheck [--steps N] [FILE|-]    (reads stdin without FILE or with "-")
 * Prints "linearizable", "NOT linearizable: ..." or "unknown: ..." and exits 0, 1 or 2
 * (2 also for usage, input and parse errors).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/err.h"
#include "lincheck.h"

#define LINCHECK_MAIN_INPUT_BYTES_MAX (1ul << 30)
#define LINCHECK_MAIN_CHUNK_BYTES (1ul << 16)
#define LINCHECK_MAIN_PREFIX_SHOWN_MAX 20

/* Reads all of f into a malloc'd buffer (returned; caller frees); NULL on error or limit. */
static char *lincheck_main_read(FILE *f, size_t *bytes) {
    size_t cap = LINCHECK_MAIN_CHUNK_BYTES, len = 0;
    char *buf = base_malloc(cap);
    for (;;) {
        if (len == cap) {
            if (cap >= LINCHECK_MAIN_INPUT_BYTES_MAX) {
                free(buf);
                return NULL;
            }
            cap *= 2;
            buf = base_realloc(buf, cap);
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) break;
    }
    if (ferror(f)) {
        free(buf);
        return NULL;
    }
    *bytes = len;
    return buf;
}

static void lincheck_main_print_op(const struct lincheck_history *h, uint64_t id) {
    const struct lincheck_op *op = lincheck_history_find(h, id);
    char line[LINCHECK_LINE_BYTES_MAX];
    if (op == NULL) return;
    lincheck_op_format(op, line, sizeof(line));
    printf("  line %llu: %s\n", (unsigned long long)id, line);
}

static int lincheck_main_report(const struct lincheck_history *h,
                                const struct lincheck_result *r) {
    if (r->verdict == LINCHECK_LINEARIZABLE) {
        printf("linearizable (%zu keys, %llu steps)\n", r->key_count,
               (unsigned long long)r->steps);
        return 0;
    }
    if (r->verdict == LINCHECK_UNKNOWN) {
        printf("unknown: key %s: %s exhausted (%llu steps)\n", r->key,
               r->memo_full ? "memo" : "step budget", (unsigned long long)r->steps);
        return 2;
    }
    char value[32] = "nil";
    if (!r->value_after_prefix.nil) {
        snprintf(value, sizeof(value), "%lld", (long long)r->value_after_prefix.v);
    }
    printf("NOT linearizable: key %s: after the longest linearizable sequence found "
           "(%zu ops, value %s), line %llu cannot be placed\n",
           r->key, r->prefix_count, value, (unsigned long long)r->blocked_id);
    lincheck_main_print_op(h, r->blocked_id);
    size_t from = r->prefix_count > LINCHECK_MAIN_PREFIX_SHOWN_MAX
                      ? r->prefix_count - LINCHECK_MAIN_PREFIX_SHOWN_MAX
                      : 0;
    printf("last %zu ops of that sequence:\n", r->prefix_count - from);
    for (size_t i = from; i < r->prefix_count; i++) lincheck_main_print_op(h, r->prefix_ids[i]);
    return 1;
}

static int lincheck_main_usage(void) {
    fprintf(stderr, "usage: lincheck [--steps N] [FILE|-]\n");
    return 2;
}

int main(int argc, char **argv) {
    struct lincheck_options o = {0};
    const char *path = "-";
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "--steps") == 0) {
        char *end = NULL;
        errno = 0;
        o.steps_max = strtoull(argv[i + 1], &end, 10);
        if (errno != 0 || end == argv[i + 1] || *end != '\0') return lincheck_main_usage();
        i += 2;
    }
    if (i < argc) path = argv[i++];
    if (i != argc || path[0] == '\0') return lincheck_main_usage();
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "lincheck: %s: %s\n", path, strerror(errno));
        return 2;
    }
    size_t bytes = 0;
    char *text = lincheck_main_read(f, &bytes);
    if (f != stdin) fclose(f);
    if (text == NULL) {
        fprintf(stderr, "lincheck: %s: read error or larger than %lu bytes\n", path,
                LINCHECK_MAIN_INPUT_BYTES_MAX);
        return 2;
    }
    struct lincheck_history h;
    struct lincheck_result r;
    struct errmsg msg = {{0}};
    lincheck_history_init(&h);
    lincheck_result_init(&r);
    int rc = lincheck_history_parse(&h, text, bytes, &msg);
    if (rc == 0) rc = lincheck_check(&h, &o, &r);
    int status = 2;
    if (rc < 0) {
        fprintf(stderr, "lincheck: %s: %s%s\n", path, err_text(rc), rc == ERR_LIMIT &&
                msg.text[0] == '\0' ? " (too many ops on one key)" : "");
        if (msg.text[0] != '\0') fprintf(stderr, "lincheck: %s: %s\n", path, msg.text);
    } else {
        status = lincheck_main_report(&h, &r);
    }
    lincheck_result_deinit(&r);
    lincheck_history_deinit(&h);
    free(text);
    return status;
}
