/*
 * The node's step function: clients, request dispatch, reply release and effects.
 *
 * Invariants: every client is in client_slots exactly once; a client's bytes below
 * released_end never wait for the log; while a client has holds, every later reply gets a
 * hold too (lsns only grow), so replies are released in order.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "core/internal.h"

#define NODE_CLIENT_SLOTS_MIN 64

void node_config_default(struct node_config *config) {
    memset(config, 0, sizeof(*config));
    config->id = 1;
    config->fsync = NODE_FSYNC_ALWAYS;
    resp_limits_default(&config->limits);
    config->output_bytes_max = NODE_OUTPUT_BYTES_MAX_DEFAULT;
    config->query_bytes_max = NODE_QUERY_BYTES_MAX_DEFAULT;
    config->snapshot_log_bytes = NODE_SNAPSHOT_LOG_BYTES_DEFAULT;
    config->wal_segment_bytes = WAL_SEGMENT_BYTES_DEFAULT;
    config->hash_seed = 0x9e3779b97f4a7c15ull;
    config->clients_max = NODE_CLIENTS_MAX_DEFAULT;
}

void node_trace(struct node *node, const char *fmt, ...) {
    if (node->config.trace == NULL) return;
    char line[512];
    int n = snprintf(line, sizeof(line), "node=%u t=%llu ", node->config.id,
                     (unsigned long long)node->now_ms);
    ASSERT(n > 0 && (size_t)n < sizeof(line));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    node->config.trace(node->config.trace_ctx, line);
}

static void node_copy_text(char *dst, size_t cap, const char *src) {
    snprintf(dst, cap, "%s", src == NULL ? "" : src);
}

int node_new(const struct node_config *config, struct disk *disk, uint64_t now_ms,
             struct node **out, struct errmsg *msg) {
    *out = NULL;
    if (config->requirepass != NULL && strlen(config->requirepass) >= NODE_REQUIREPASS_BYTES_MAX) {
        return errmsg_set(msg, ERR_CONFIG, "requirepass is longer than %d bytes",
                          NODE_REQUIREPASS_BYTES_MAX - 1);
    }
    struct node *node = base_calloc(1, sizeof(*node));
    node->config = *config;
    node_copy_text(node->requirepass, sizeof(node->requirepass), config->requirepass);
    node_copy_text(node->listen, sizeof(node->listen), config->listen);
    node_copy_text(node->dir, sizeof(node->dir), config->dir);
    node->config.requirepass = node->requirepass;
    node->config.listen = node->listen;
    node->config.dir = node->dir;
    node->disk = disk;
    node->now_ms = now_ms;
    node->started_ms = now_ms;
    node->db = db_new(config->hash_seed);
    node->client_slot_count = NODE_CLIENT_SLOTS_MIN;
    node->client_slots = base_calloc(node->client_slot_count, sizeof(struct client *));
    buf_init(&node->write_list);
    buf_init(&node->close_list);
    buf_init(&node->ops);
    buf_init(&node->scratch);
    int rc = persist_open(node, msg);
    if (rc != 0) {
        node_free(node);
        return rc;
    }
    node->next_tick_ms = now_ms;
    *out = node;
    return 0;
}

static void node_client_free(struct client *c) {
    resp_parser_deinit(&c->parser);
    buf_deinit(&c->query);
    buf_deinit(&c->out);
    buf_deinit(&c->multi_queue);
    buf_deinit(&c->watched);
    free(c->holds);
    free(c);
}

void node_free(struct node *node) {
    if (node == NULL) return;
    for (uint32_t i = 0; i < node->client_slot_count; i++) {
        if (node->client_slots[i] != NULL) node_client_free(node->client_slots[i]);
    }
    free(node->client_slots);
    persist_close(node);
    db_free(node->db);
    buf_deinit(&node->write_list);
    buf_deinit(&node->close_list);
    buf_deinit(&node->ops);
    buf_deinit(&node->scratch);
    free(node);
}

/* Client map: open addressing on the id; deletion by backward shift. */
static uint32_t node_client_slot(const struct node *node, uint64_t id) {
    uint64_t h = id * 0x9e3779b97f4a7c15ull;
    return (uint32_t)(h >> 32) & (node->client_slot_count - 1);
}

struct client *node_client_find(struct node *node, uint64_t id) {
    uint32_t mask = node->client_slot_count - 1;
    for (uint32_t i = node_client_slot(node, id);; i = (i + 1) & mask) {
        struct client *c = node->client_slots[i];
        if (c == NULL || c->id == id) return c;
    }
}

static void node_client_insert(struct node *node, struct client *c) {
    uint32_t mask = node->client_slot_count - 1;
    uint32_t i = node_client_slot(node, c->id);
    while (node->client_slots[i] != NULL) {
        ASSERT(node->client_slots[i]->id != c->id);
        i = (i + 1) & mask;
    }
    node->client_slots[i] = c;
}

static void node_client_map_grow(struct node *node) {
    struct client **old = node->client_slots;
    uint32_t old_count = node->client_slot_count;
    node->client_slot_count = old_count * 2;
    node->client_slots = base_calloc(node->client_slot_count, sizeof(struct client *));
    for (uint32_t i = 0; i < old_count; i++) {
        if (old[i] != NULL) node_client_insert(node, old[i]);
    }
    free(old);
}

static void node_client_map_remove(struct node *node, uint64_t id) {
    uint32_t mask = node->client_slot_count - 1;
    uint32_t i = node_client_slot(node, id);
    while (node->client_slots[i]->id != id) i = (i + 1) & mask;
    node->client_slots[i] = NULL;
    /* Backward shift: re-place the rest of the cluster so lookups never stop early. */
    for (uint32_t j = (i + 1) & mask; node->client_slots[j] != NULL; j = (j + 1) & mask) {
        struct client *moved = node->client_slots[j];
        node->client_slots[j] = NULL;
        node_client_insert(node, moved);
    }
}

static void node_list_add(struct buf *list, uint64_t id) { buf_append(list, &id, sizeof(id)); }

static void node_client_mark_write(struct node *node, struct client *c) {
    if (c->listed_for_write) return;
    c->listed_for_write = true;
    node_list_add(&node->write_list, c->id);
}

void node_client_mark_close(struct node *node, struct client *c) {
    c->close_after_output = true;
    if (c->listed_for_close) return;
    c->listed_for_close = true;
    node_list_add(&node->close_list, c->id);
    node_client_mark_write(node, c);
}

static void node_client_open(struct node *node, const struct node_event *ev) {
    ASSERT(node_client_find(node, ev->client_id) == NULL);
    struct client *c = base_calloc(1, sizeof(*c));
    c->id = ev->client_id;
    node_copy_text(c->addr, sizeof(c->addr), ev->peer_addr);
    c->proto = 2;
    c->authed = node->requirepass[0] == '\0';
    c->created_ms = node->now_ms;
    c->last_active_ms = node->now_ms;
    resp_parser_init(&c->parser, &node->config.limits);
    buf_init(&c->query);
    buf_init(&c->out);
    buf_init(&c->multi_queue);
    buf_init(&c->watched);
    c->holds = base_calloc(NODE_HOLDS_MAX, sizeof(struct node_hold));
    if ((node->client_count + 1) * 2 > node->client_slot_count) node_client_map_grow(node);
    node_client_insert(node, c);
    node->client_count++;
    node->stats.connections++;
    if (node->client_count > node->config.clients_max) {
        node->stats.rejected_connections++;
        resp_put_error(&c->out, "ERR max number of clients reached");
        c->released_end = c->out.len;
        node_client_mark_close(node, c);
    }
}

static void node_held_list_remove(struct node *node, struct client *c) {
    if (!c->in_held_list) return;
    for (struct client **p = &node->held; *p != NULL; p = &(*p)->held_next) {
        if (*p == c) {
            *p = c->held_next;
            break;
        }
    }
    c->in_held_list = false;
    c->held_next = NULL;
}

static void node_client_closed(struct node *node, uint64_t id) {
    struct client *c = node_client_find(node, id);
    if (c == NULL) return;
    tx_unwatch(node, c);
    node_held_list_remove(node, c);
    node_client_map_remove(node, id);
    ASSERT(node->client_count > 0);
    node->client_count--;
    node_client_free(c);
}
