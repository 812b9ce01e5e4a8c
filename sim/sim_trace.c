/* The simulator's trace (see sim_trace.h): hash every record, keep a ring, print lazily. */
#include "sim_trace.h"

#include <string.h>

#include <xxhash.h>

#include "base/assert.h"

/* Each kind's name and the names of its four numbers ("" = not printed). */
static const char *const sim_trace_names[SIM_TRACE_KIND_COUNT][5] = {
    [SIM_TRACE_SEND] = {"send", "to", "type", "term", "index"},
    [SIM_TRACE_RECV] = {"recv", "from", "type", "term", "index"},
    [SIM_TRACE_ROLE] = {"role", "role", "term", "leader", "last"},
    [SIM_TRACE_COMMIT] = {"commit", "from", "to", "term", ""},
    [SIM_TRACE_APPLY] = {"apply", "index", "term", "type", "hash"},
    [SIM_TRACE_PERSIST] = {"persist", "entries", "last", "truncate", "hard_term"},
    [SIM_TRACE_SYNC] = {"sync", "durable_lsn", "durable_index", "durable_term", ""},
    [SIM_TRACE_CRASH] = {"crash", "tear", "incarnation", "", ""},
    [SIM_TRACE_RESTART] = {"restart", "term", "snapshot", "entries", "vote"},
    [SIM_TRACE_SNAPSHOT] = {"snapshot", "index", "term", "", ""},
    [SIM_TRACE_RESTORE] = {"restore", "index", "term", "", ""},
    [SIM_TRACE_PARTITION] = {"partition", "pattern", "groups", "bridge", ""},
    [SIM_TRACE_LINK] = {"link", "from", "to", "cut", ""},
    [SIM_TRACE_HEAL] = {"heal", "", "", "", ""},
    [SIM_TRACE_INVOKE] = {"invoke", "client", "op", "node", "kind"},
    [SIM_TRACE_REPLY] = {"reply", "client", "op", "outcome", "value"},
    [SIM_TRACE_TIMEOUT] = {"timeout", "client", "op", "", ""},
    [SIM_TRACE_PROPOSE] = {"propose", "client", "op", "index", "term"},
    [SIM_TRACE_READ] = {"read", "client", "op", "index", ""},
    [SIM_TRACE_PHASE] = {"phase", "phase", "", "", ""},
    [SIM_TRACE_CHANGE] = {"change", "kind", "server", "rc", ""},
    [SIM_TRACE_FAULT] = {"fault", "kind", "a", "b", ""},
    [SIM_TRACE_DISK_LOSS] = {"disk-loss", "incarnation", "", "", ""},
};

void sim_trace_init(struct sim_trace *tr, FILE *out) {
    ASSERT(tr != NULL);
    memset(tr, 0, sizeof(*tr));
    tr->out = out;
}

static void sim_trace_print(const struct sim_trace_rec *r, FILE *out) {
    ASSERT(r->kind < SIM_TRACE_KIND_COUNT);
    const char *const *names = sim_trace_names[r->kind];
    fprintf(out, "%u %llu %s", r->node, (unsigned long long)r->t_ms, names[0]);
    for (int i = 0; i < 4; i++)
        if (names[i + 1][0] != '\0')
            fprintf(out, " %s=%llu", names[i + 1], (unsigned long long)r->a[i]);
    fputc('\n', out);
}

void sim_trace_add(struct sim_trace *tr, uint64_t t_ms, uint32_t node, enum sim_trace_kind kind,
                   uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
    ASSERT(kind < SIM_TRACE_KIND_COUNT);
    struct sim_trace_rec *r = &tr->ring[tr->count % SIM_TRACE_RING];
    *r = (struct sim_trace_rec){.t_ms = t_ms, .node = node, .kind = kind, .a = {a, b, c, d}};
    tr->hash = XXH64(r, sizeof(*r), tr->hash);
    tr->count++;
    if (tr->out != NULL) sim_trace_print(r, tr->out);
}

void sim_trace_dump(const struct sim_trace *tr, FILE *out, unsigned count) {
    uint64_t n = count < SIM_TRACE_RING ? count : SIM_TRACE_RING;
    if (n > tr->count) n = tr->count;
    for (uint64_t i = tr->count - n; i < tr->count; i++)
        sim_trace_print(&tr->ring[i % SIM_TRACE_RING], out);
}
