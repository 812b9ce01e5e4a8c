/*
 * capkv-sim: runs the deterministic simulator (sim/sim.h) from the command line.
 *   capkv-sim --seed N                 one seed; prints "seed N: ok ..." with counts
 *   capkv-sim --seeds A-B              a range; ends with "N passed, N failed" and the failures
 *   capkv-sim --seconds S              random seeds until S wall-clock seconds are up
 *   --nodes 3|5  --replication majority|leader|all  --run-ms MS  --trace  --verbose
 *   --core raft|node    the target (sim.h): raft (default): raft + raftstore + a toy state
 *                       machine; node: the real node cores, their engines included
 *   --expiry            node core only: also SET with small PX on keys outside the history
 *   --big-values        node core only: also SET a few keys outside the history to 64 KiB..1 MiB
 *   --ap                node core only: also AP keyspaces (counters and sets, conflict = crdt)
 *                       written on every side of partitions; replicas must converge to the
 *                       specification (sim/nodesim_ap.c)
 *                       (off by default: memdisk copies a file's image on every sync, so
 *                       megabyte snapshots make a seed several times slower)
 *   --membership        raft core only: remove and re-add servers as a fault
 *   --wal-segment-bytes N   node core only: the cores' WAL segment size (default 256 KiB)
 * Every seed's line says ok, FAILED, or UNKNOWN (every check passed but the lincheck's
 * search budget ran out: the history is unproven) and ends with the lincheck verdict
 * (linearizable; NOT-linearizable, only in leader mode: raft core, or lost writes; unknown;
 * none: the run stopped before the check) and the trace hash. A range prints
 * "lincheck unknown: N" (and those seeds) before "N passed, N failed"; an UNKNOWN seed
 * counts as failed there and in the exit status: an unchecked history is never a pass.
 * Only this file reads a clock (for --seconds and the first random seed); a seed's run
 * never does, so every seed printed replays exactly with --seed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"

#define CAPKV_SIM_FAILED_SHOWN_MAX 100

struct capkv_sim_args {
    struct sim_options sim;
    uint64_t first;
    uint64_t last;
    double seconds; /* > 0: random seeds until then */
    bool verbose;
};

static int capkv_sim_usage(void) {
    fprintf(stderr,
            "usage: capkv-sim [--seed N | --seeds A-B | --seconds S] [--nodes 3|5]\n"
            "                 [--replication majority|leader|all] [--run-ms MS]\n"
            "                 [--core raft|node] [--expiry] [--big-values] [--ap] [--membership]\n"
            "                 [--wal-segment-bytes N]\n"
            "                 [--trace] [--verbose]\n");
    return 2;
}

static bool capkv_sim_u64(const char *s, uint64_t *out) {
    char *end = NULL;
    if (s == NULL || *s < '0' || *s > '9') return false;
    *out = strtoull(s, &end, 10);
    return end != s && (*end == '\0' || *end == '-');
}

static int capkv_sim_parse_one(struct capkv_sim_args *a, const char *flag, const char *v) {
    uint64_t n = 0;
    if (strcmp(flag, "--seed") == 0 && capkv_sim_u64(v, &n)) {
        a->first = a->last = n;
    } else if (strcmp(flag, "--seeds") == 0 && capkv_sim_u64(v, &a->first) &&
               strchr(v, '-') != NULL && capkv_sim_u64(strchr(v, '-') + 1, &a->last) &&
               a->first <= a->last) {
    } else if (strcmp(flag, "--nodes") == 0 && capkv_sim_u64(v, &n) && (n == 3 || n == 5)) {
        a->sim.node_count = (uint32_t)n;
    } else if (strcmp(flag, "--replication") == 0 && v != NULL) {
        if (strcmp(v, "majority") == 0)
            a->sim.replication = SIM_REPLICATION_MAJORITY;
        else if (strcmp(v, "leader") == 0)
            a->sim.replication = SIM_REPLICATION_LEADER;
        else if (strcmp(v, "all") == 0)
            a->sim.replication = SIM_REPLICATION_ALL;
        else
            return -1;
    } else if (strcmp(flag, "--run-ms") == 0 && capkv_sim_u64(v, &n) && n > 0) {
        a->sim.run_ms = n;
    } else if (strcmp(flag, "--core") == 0 && v != NULL &&
               (strcmp(v, "node") == 0 || strcmp(v, "raft") == 0)) {
        a->sim.target = strcmp(v, "node") == 0 ? SIM_TARGET_NODE : SIM_TARGET_RAFT;
    } else if (strcmp(flag, "--wal-segment-bytes") == 0 && capkv_sim_u64(v, &n) && n > 0) {
        a->sim.wal_segment_bytes = n;
    } else if (strcmp(flag, "--seconds") == 0 && v != NULL && atof(v) > 0) {
        a->seconds = atof(v);
    } else {
        return -1;
    }
    return 0;
}

static int capkv_sim_parse(int argc, char **argv, struct capkv_sim_args *a) {
    memset(a, 0, sizeof(*a));
    sim_options_default(&a->sim);
    a->first = a->last = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--trace") == 0) {
            a->sim.trace = stdout;
        } else if (strcmp(argv[i], "--verbose") == 0) {
            a->verbose = true;
        } else if (strcmp(argv[i], "--expiry") == 0) {
            a->sim.expiry = true;
        } else if (strcmp(argv[i], "--big-values") == 0) {
            a->sim.big_values = true;
        } else if (strcmp(argv[i], "--ap") == 0) {
            a->sim.ap = true;
        } else if (strcmp(argv[i], "--membership") == 0) {
            a->sim.membership = true;
        } else {
            if (capkv_sim_parse_one(a, argv[i], i + 1 < argc ? argv[i + 1] : NULL) != 0) return -1;
            i++;
        }
    }
    return 0;
}

static const char *capkv_sim_verdict(const struct sim_stats *s) {
    if (!s->lincheck_checked) return "none";
    return s->lincheck == LINCHECK_LINEARIZABLE       ? "linearizable"
           : s->lincheck == LINCHECK_NOT_LINEARIZABLE ? "NOT-linearizable"
                                                      : "unknown";
}

/* Every other check passed, but the lincheck could not decide the history. */
static bool capkv_sim_unknown(const struct sim_stats *s) {
    return !s->failed && s->lincheck_checked && s->lincheck == LINCHECK_UNKNOWN;
}

static void capkv_sim_print(const struct capkv_sim_args *a, const struct sim_stats *s) {
    const struct sim_options *o = &a->sim;
    const char *status = s->failed ? "FAILED" : capkv_sim_unknown(s) ? "UNKNOWN" : "ok";
    printf("seed %" PRIu64 ": %s steps=%" PRIu64 " virtual_ms=%" PRIu64 " ops ok=%" PRIu64
           " fail=%" PRIu64 " info=%" PRIu64 " leaders=%" PRIu64 " crashes=%" PRIu64
           " partitions=%" PRIu64 " snapshots=%" PRIu64 " restores=%" PRIu64 " persist=%s"
           " acked=%" PRIu64,
           o->seed, status, s->steps, s->virtual_ms, s->ops_ok, s->ops_fail, s->ops_info,
           s->leaders, s->crashes, s->partitions, s->snapshots, s->restores,
           s->async_seed ? "async" : "sync", s->acked_writes);
    if (o->membership) printf(" changes=%" PRIu64, s->changes);
    if (o->target == SIM_TARGET_NODE)
        printf(" faults=%" PRIu64 " keyspaces=%" PRIu64 "/%" PRIu64 " flushes=%" PRIu64
               " txns=%" PRIu64 " incr=%" PRIu64 "..%" PRIu64,
               s->fault_commands, s->keyspace_changes, s->keyspace_tables, s->flushes,
               s->txns_applied, s->incr_applied, s->incr_applied + s->incr_unknown);
    if (o->replication == SIM_REPLICATION_LEADER)
        printf(" lost-acked-writes=%" PRIu64, s->lost_acked_writes);
    if (o->ap)
        printf(" disk-losses=%" PRIu64 " disk-loss-unknown=%" PRIu64 " collected=%" PRIu64,
               s->disk_losses, s->disk_loss_unknown, s->ap_collected);
    printf(" lincheck=%s trace=%016" PRIx64 "\n", capkv_sim_verdict(s), s->trace_hash);
}

static double capkv_sim_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What a range of seeds came to; the first seeds of each kind are kept for the summary. */
struct capkv_sim_tally {
    uint64_t passed;
    uint64_t failed; /* unknown ones included */
    uint64_t unknown;
    uint64_t lost;
    uint64_t disk_losses; /* --ap */
    uint64_t collected;   /* --ap: tombstones */
    uint64_t failures[CAPKV_SIM_FAILED_SHOWN_MAX];
    uint64_t unknowns[CAPKV_SIM_FAILED_SHOWN_MAX];
};

static void capkv_sim_count(struct capkv_sim_tally *t, uint64_t seed, int rc,
                            const struct sim_stats *s) {
    t->lost += s->lost_acked_writes;
    t->disk_losses += s->disk_losses;
    t->collected += s->ap_collected;
    if (rc == 0 && !capkv_sim_unknown(s)) {
        t->passed++;
        return;
    }
    if (rc == 0) {
        if (t->unknown < CAPKV_SIM_FAILED_SHOWN_MAX) t->unknowns[t->unknown] = seed;
        t->unknown++;
    }
    if (t->failed < CAPKV_SIM_FAILED_SHOWN_MAX) t->failures[t->failed] = seed;
    t->failed++;
}

static void capkv_sim_seed_list(const char *title, const uint64_t *seeds, uint64_t count) {
    printf("%s:", title);
    for (uint64_t i = 0; i < count && i < CAPKV_SIM_FAILED_SHOWN_MAX; i++)
        printf(" %" PRIu64, seeds[i]);
    printf("\n");
}

static void capkv_sim_summary(const struct capkv_sim_args *a, const struct capkv_sim_tally *t) {
    if (a->sim.replication == SIM_REPLICATION_LEADER)
        printf("lost acknowledged writes (leader mode): %" PRIu64 "\n", t->lost);
    if (a->sim.ap)
        printf("disk losses (ap): %" PRIu64 "\ntombstones collected (ap): %" PRIu64 "\n",
               t->disk_losses, t->collected);
    printf("lincheck unknown: %" PRIu64 "\n", t->unknown);
    if (t->unknown > 0) capkv_sim_seed_list("lincheck unknown seeds", t->unknowns, t->unknown);
    if (t->failed > 0) capkv_sim_seed_list("failing seeds", t->failures, t->failed);
    printf("%" PRIu64 " passed, %" PRIu64 " failed\n", t->passed, t->failed);
}

int main(int argc, char **argv) {
    struct capkv_sim_args a;
    if (capkv_sim_parse(argc, argv, &a) != 0) return capkv_sim_usage();
    const char *why = NULL;
    if (!sim_options_valid(&a.sim, &why)) {
        fprintf(stderr, "capkv-sim: %s\n", why);
        return capkv_sim_usage();
    }
    a.sim.report = stdout;
    double start = capkv_sim_now();
    if (a.seconds > 0) {
        a.first = (uint64_t)time(NULL) * 1000;
        a.last = UINT64_MAX;
    }
    bool one = a.first == a.last;
    struct capkv_sim_tally t;
    memset(&t, 0, sizeof(t));
    for (uint64_t seed = a.first; seed <= a.last; seed++) {
        if (a.seconds > 0 && capkv_sim_now() - start >= a.seconds) break;
        a.sim.seed = seed;
        struct sim_stats s;
        int rc = sim_run(&a.sim, &s);
        if (one || a.verbose || rc != 0 || capkv_sim_unknown(&s)) capkv_sim_print(&a, &s);
        fflush(stdout);
        capkv_sim_count(&t, seed, rc, &s);
        if (seed == UINT64_MAX) break;
    }
    if (!one) capkv_sim_summary(&a, &t);
    return t.failed == 0 ? 0 : 1;
}
