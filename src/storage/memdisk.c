/*
 * The in-memory disk (memdisk.h). Model:
 *   - a node is a file's content: the current image (what reads see) and the synced image
 *     (what survives a crash); sync copies current to synced.
 *   - two directories map names to nodes: `cur` (what list/open see) and `durable` (what
 *     survives a crash); sync_dir (and a sync of dir_file) copies cur to durable.
 *   - a node lives while a directory entry or an open handle refers to it.
 *   - capacity counts the current size of every live node.
 * Invariants: size <= cap for every image; used_bytes == sum of live nodes' sizes;
 * used_bytes <= capacity except after memdisk_set_capacity shrank it.
 */
#include "storage/memdisk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"

struct memdisk_image {
    uint8_t *data;
    uint64_t size;
    uint64_t cap;
};

struct memdisk_node {
    struct memdisk_image current;
    struct memdisk_image synced;
    int open_count;
    bool dirty; /* written since the last sync */
};

struct memdisk_entry {
    char name[DISK_NAME_BYTES_MAX];
    struct memdisk_node *node;
};

struct disk_file {
    struct memdisk_node *node; /* NULL: the directory (dir_file) */
    uint64_t epoch;
};

struct memdisk_dir {
    struct memdisk_entry entries[MEMDISK_FILE_COUNT_MAX];
    int count;
};

struct memdisk {
    struct memdisk_dir cur;
    struct memdisk_dir durable;
    uint64_t capacity;
    uint64_t used_bytes;
    uint64_t epoch;           /* bumped by every crash; older handles are stale */
    uint64_t fault_countdown; /* 0: no fault pending */
    int fault_code;
    /* The most recent write, for tearing; node NULL once synced or freed. */
    struct memdisk_node *last_write_node;
    uint64_t last_write_offset;
    uint64_t last_write_bytes;
    struct disk_file dir_file; /* node NULL; valid across crashes */
};

static struct memdisk *memdisk_of(struct disk *d) {
    ASSERT(d != NULL);
    ASSERT(d->impl != NULL);
    return d->impl;
}

static void memdisk_image_resize(struct memdisk_image *img, uint64_t size) {
    if (size > img->cap) {
        uint64_t cap = img->cap ? img->cap : 64;
        while (cap < size) cap *= 2;
        img->data = base_realloc(img->data, (unsigned long)cap);
        img->cap = cap;
    }
    if (size > img->size) memset(img->data + img->size, 0, (size_t)(size - img->size));
    img->size = size;
    ASSERT(img->size <= img->cap);
}

static void memdisk_image_copy(struct memdisk_image *to, const struct memdisk_image *from) {
    memdisk_image_resize(to, from->size);
    if (from->size > 0) memcpy(to->data, from->data, (size_t)from->size);
    ASSERT(to->size == from->size);
}

static int memdisk_dir_find(const struct memdisk_dir *dir, const char *name) {
    for (int i = 0; i < dir->count; i++) {
        if (strcmp(dir->entries[i].name, name) == 0) return i;
    }
    return -1;
}

static bool memdisk_dir_refers(const struct memdisk_dir *dir, const struct memdisk_node *n) {
    for (int i = 0; i < dir->count; i++) {
        if (dir->entries[i].node == n) return true;
    }
    return false;
}

static void memdisk_dir_remove_at(struct memdisk_dir *dir, int index) {
    ASSERT(index >= 0 && index < dir->count);
    dir->entries[index] = dir->entries[dir->count - 1];
    dir->count--;
}

/* Frees n if nothing refers to it any more. */
static void memdisk_node_release(struct memdisk *m, struct memdisk_node *n) {
    if (n->open_count > 0) return;
    if (memdisk_dir_refers(&m->cur, n) || memdisk_dir_refers(&m->durable, n)) return;
    ASSERT(m->used_bytes >= n->current.size);
    m->used_bytes -= n->current.size;
    if (m->last_write_node == n) m->last_write_node = NULL;
    free(n->current.data);
    free(n->synced.data);
    free(n);
}

/* Counts down an injected fault; returns its code when it fires. */
static int memdisk_fault(struct memdisk *m, struct errmsg *msg, const char *what) {
    if (m->fault_countdown == 0) return 0;
    m->fault_countdown--;
    if (m->fault_countdown > 0) return 0;
    return errmsg_set(msg, m->fault_code, "memdisk: injected %s on %s", err_name(m->fault_code),
                      what);
}

static int memdisk_check_name(const char *name, struct errmsg *msg) {
    size_t len = strlen(name);
    if (len == 0 || len >= DISK_NAME_BYTES_MAX || strchr(name, '/') != NULL) {
        return errmsg_set(msg, ERR_INVALID, "memdisk: bad file name '%s'", name);
    }
    return 0;
}

static int memdisk_check_handle(struct memdisk *m, struct disk_file *f, struct errmsg *msg) {
    ASSERT(f != NULL);
    ASSERT(f->node->open_count > 0);
    if (f->epoch != m->epoch) return errmsg_set(msg, ERR_IO, "memdisk: handle used after crash");
    return 0;
}

/* Grows n's current image to size, within capacity. */
static int memdisk_grow(struct memdisk *m, struct memdisk_node *n, uint64_t size,
                        struct errmsg *msg) {
    if (size <= n->current.size) return 0;
    uint64_t extra = size - n->current.size;
    if (extra > m->capacity || m->used_bytes > m->capacity - extra) {
        return errmsg_set(msg, ERR_NOSPACE,
                          "memdisk: no space for %llu more bytes (%llu of %llu "
                          "used)",
                          (unsigned long long)extra, (unsigned long long)m->used_bytes,
                          (unsigned long long)m->capacity);
    }
    memdisk_image_resize(&n->current, size);
    m->used_bytes += extra;
    return 0;
}

static struct memdisk_node *memdisk_node_new(void) {
    struct memdisk_node *n = base_calloc(1, sizeof(*n));
    return n;
}

static int memdisk_open(struct disk *d, const char *name, int flags, struct disk_file **out,
                        struct errmsg *msg) {
    struct memdisk *m = memdisk_of(d);
    *out = NULL;
    int rc = memdisk_check_name(name, msg);
    if (rc == 0) rc = memdisk_fault(m, msg, "open");
    if (rc != 0) return rc;
    int index = memdisk_dir_find(&m->cur, name);
    if (index < 0) {
        bool create = (flags & DISK_OPEN_WRITE) && (flags & DISK_OPEN_CREATE);
        if (!create) return errmsg_set(msg, ERR_NOTFOUND, "memdisk: %s: no such file", name);
        if (m->cur.count == MEMDISK_FILE_COUNT_MAX) {
            return errmsg_set(msg, ERR_NOSPACE, "memdisk: %s: directory full", name);
        }
        index = m->cur.count++;
        snprintf(m->cur.entries[index].name, DISK_NAME_BYTES_MAX, "%s", name);
        m->cur.entries[index].node = memdisk_node_new();
    }
    struct disk_file *f = base_malloc(sizeof(*f));
    f->node = m->cur.entries[index].node;
    f->epoch = m->epoch;
    f->node->open_count++;
    *out = f;
    return 0;
}

static void memdisk_close(struct disk *d, struct disk_file *f) {
    struct memdisk *m = memdisk_of(d);
    if (f == NULL) return;
    ASSERT(f->node->open_count > 0);
    f->node->open_count--;
    memdisk_node_release(m, f->node);
    free(f);
}

static int memdisk_read(struct disk *d, struct disk_file *f, uint64_t offset, void *data,
                        size_t bytes, size_t *read_bytes, struct errmsg *msg) {
    struct memdisk *m = memdisk_of(d);
    *read_bytes = 0;
    int rc = memdisk_check_handle(m, f, msg);
    if (rc == 0) rc = memdisk_fault(m, msg, "read");
    if (rc != 0) return rc;
    const struct memdisk_image *img = &f->node->current;
    if (offset >= img->size) return 0;
    uint64_t n = img->size - offset;
    if (n > bytes) n = bytes;
    memcpy(data, img->data + offset, (size_t)n);
    *read_bytes = (size_t)n;
    return 0;
}

static int memdisk_write(struct disk *d, struct disk_file *f, uint64_t offset, const void *data,
                         size_t bytes, struct errmsg *msg) {
    struct memdisk *m = memdisk_of(d);
    int rc = memdisk_check_handle(m, f, msg);
    if (rc == 0) rc = memdisk_fault(m, msg, "write");
    if (rc != 0) return rc;
    if (bytes == 0) return 0;
    if (offset > UINT64_MAX - bytes) return errmsg_set(msg, ERR_INVALID, "memdisk: offset");
    struct memdisk_node *n = f->node;
    rc = memdisk_grow(m, n, offset + bytes, msg);
    if (rc != 0) return rc;
    memcpy(n->current.data + offset, data, bytes);
    n->dirty = true;
    m->last_write_node = n;
    m->last_write_offset = offset;
    m->last_write_bytes = bytes;
    return 0;
}

static int memdisk_allocate(struct disk *d, struct disk_file *f, uint64_t offset, uint64_t bytes,
                            struct errmsg *msg) {
    struct memdisk *m = memdisk_of(d);
    int rc = memdisk_check_handle(m, f, msg);
    if (rc == 0) rc = memdisk_fault(m, msg, "allocate");
    if (rc != 0) return rc;
    if (offset > UINT64_MAX - bytes) return errmsg_set(msg, ERR_INVALID, "memdisk: offset");
    /* Like posix_fallocate: the size grows, the new range reads as zeros. Size changes are
     * metadata: durable only with the next sync. */
    uint64_t before = f->node->current.size;
    rc = memdisk_grow(m, f->node, offset + bytes, msg);
    if (rc == 0 && f->node->current.size != before) f->node->dirty = true;
    return rc;
}

static int memdisk_size(struct disk *d, struct disk_file *f, uint64_t *bytes, struct errmsg *msg) {
    struct memdisk *m = memdisk_of(d);
    *bytes = 0;
    int rc = memdisk_check_handle(m, f, msg);
    if (rc == 0) rc = memdisk_fault(m, msg, "size");
    if (rc != 0) return rc;
    *bytes = f->node->current.size;
    return 0;
}

static int memdisk_truncate(struct disk *d, struct disk_file *f, uint64_t bytes,
                            struct errmsg *msg) {
    struct memdisk *m = memdisk_of(d);
    int rc = memdisk_check_handle(m, f, msg);
    if (rc == 0) rc = memdisk_fault(m, msg, "truncate");
    if (rc != 0) return rc;
    struct memdisk_node *n = f->node;
    if (bytes > n->current.size) return memdisk_grow(m, n, bytes, msg);
    m->used_bytes -= n->current.size - bytes;
    n->current.size = bytes;
    n->dirty = true;
    return 0;
}

static void memdisk_dir_commit(struct memdisk *m);

static int memdisk_sync(struct disk *d, struct disk_file *f, struct errmsg *msg) {
    struct memdisk *m = memdisk_of(d);
    if (f == &m->dir_file) {
        int rc = memdisk_fault(m, msg, "sync_dir");
        if (rc == 0) memdisk_dir_commit(m);
        return rc;
    }
    int rc = memdisk_check_handle(m, f, msg);
    if (rc == 0) rc = memdisk_fault(m, msg, "sync");
    if (rc != 0) return rc;
    memdisk_image_copy(&f->node->synced, &f->node->current);
    f->node->dirty = false;
    if (m->last_write_node == f->node) m->last_write_node = NULL;
    return 0;
}

/* Makes the current directory durable; frees nodes only the old durable one referred to. */
static void memdisk_dir_commit(struct memdisk *m) {
    struct memdisk_dir old = m->durable;
    m->durable = m->cur;
    for (int i = 0; i < old.count; i++) memdisk_node_release(m, old.entries[i].node);
}

static int memdisk_rename(struct disk *d, const char *from, const char *to, struct errmsg *msg) {
    struct memdisk *m = memdisk_of(d);
    int rc = memdisk_check_name(from, msg);
    if (rc == 0) rc = memdisk_check_name(to, msg);
    if (rc == 0) rc = memdisk_fault(m, msg, "rename");
    if (rc != 0) return rc;
    int index = memdisk_dir_find(&m->cur, from);
    if (index < 0) return errmsg_set(msg, ERR_NOTFOUND, "memdisk: %s: no such file", from);
    if (strcmp(from, to) == 0) return 0;
    int old = memdisk_dir_find(&m->cur, to);
    struct memdisk_node *replaced = NULL;
    if (old >= 0) {
        replaced = m->cur.entries[old].node;
        memdisk_dir_remove_at(&m->cur, old);
        if (index == m->cur.count) index = old; /* the moved last entry was `from` */
    }
    snprintf(m->cur.entries[index].name, DISK_NAME_BYTES_MAX, "%s", to);
    if (replaced != NULL) memdisk_node_release(m, replaced);
    return 0;
}

static int memdisk_remove(struct disk *d, const char *name, struct errmsg *msg) {
    struct memdisk *m = memdisk_of(d);
    int rc = memdisk_check_name(name, msg);
    if (rc == 0) rc = memdisk_fault(m, msg, "remove");
    if (rc != 0) return rc;
    int index = memdisk_dir_find(&m->cur, name);
    if (index < 0) return errmsg_set(msg, ERR_NOTFOUND, "memdisk: %s: no such file", name);
    struct memdisk_node *n = m->cur.entries[index].node;
    memdisk_dir_remove_at(&m->cur, index);
    memdisk_node_release(m, n);
    return 0;
}

static int memdisk_list(struct disk *d, disk_list_fn *fn, void *ctx, struct errmsg *msg) {
    struct memdisk *m = memdisk_of(d);
    int rc = memdisk_fault(m, msg, "list");
    if (rc != 0) return rc;
    /* Copy the names first: fn may remove files. */
    int count = m->cur.count;
    char(*names)[DISK_NAME_BYTES_MAX] =
        base_malloc((unsigned long)(count + 1) * DISK_NAME_BYTES_MAX);
    for (int i = 0; i < count; i++) memcpy(names[i], m->cur.entries[i].name, DISK_NAME_BYTES_MAX);
    for (int i = 0; i < count; i++) fn(ctx, names[i]);
    free(names);
    return 0;
}

static int memdisk_sync_dir(struct disk *d, struct errmsg *msg) {
    struct memdisk *m = memdisk_of(d);
    int rc = memdisk_fault(m, msg, "sync_dir");
    if (rc != 0) return rc;
    memdisk_dir_commit(m);
    return 0;
}

static struct disk_file *memdisk_dir_file(struct disk *d) {
    return &memdisk_of(d)->dir_file;
}

void memdisk_init(struct disk *d) {
    ASSERT(d != NULL);
    struct memdisk *m = base_calloc(1, sizeof(*m));
    m->capacity = MEMDISK_CAPACITY_UNLIMITED;
    *d = (struct disk){
        .impl = m,
        .open = memdisk_open,
        .close = memdisk_close,
        .read = memdisk_read,
        .write = memdisk_write,
        .allocate = memdisk_allocate,
        .size = memdisk_size,
        .truncate = memdisk_truncate,
        .sync = memdisk_sync,
        .rename = memdisk_rename,
        .remove = memdisk_remove,
        .list = memdisk_list,
        .sync_dir = memdisk_sync_dir,
        .dir_file = memdisk_dir_file,
    };
}

void memdisk_deinit(struct disk *d) {
    struct memdisk *m = memdisk_of(d);
    /* Pop entries one by one: a node is freed when its last reference goes. */
    struct memdisk_dir *dirs[2] = {&m->cur, &m->durable};
    for (int i = 0; i < 2; i++) {
        while (dirs[i]->count > 0) {
            struct memdisk_node *n = dirs[i]->entries[dirs[i]->count - 1].node;
            ASSERT(n->open_count == 0);
            dirs[i]->count--;
            memdisk_node_release(m, n);
        }
    }
    ASSERT(m->used_bytes == 0);
    free(m);
    d->impl = NULL;
}

void memdisk_set_capacity(struct disk *d, uint64_t bytes) {
    memdisk_of(d)->capacity = bytes;
}

uint64_t memdisk_used_bytes(const struct disk *d) {
    ASSERT(d->impl != NULL);
    const struct memdisk *m = d->impl;
    return m->used_bytes;
}

void memdisk_fail_after(struct disk *d, uint64_t call_count, int code) {
    struct memdisk *m = memdisk_of(d);
    ASSERT(code < 0);
    m->fault_countdown = call_count;
    m->fault_code = code;
}

/* Resets one live node to its synced image. */
static void memdisk_crash_node(struct memdisk *m, struct memdisk_node *n) {
    m->used_bytes -= n->current.size;
    memdisk_image_copy(&n->current, &n->synced);
    m->used_bytes += n->current.size;
    n->dirty = false;
}

/* Applies a torn prefix of a lost write on top of the node's synced image. */
static void memdisk_crash_tear(struct memdisk *m, struct memdisk_node *n, uint64_t offset,
                               const uint8_t *prefix, uint64_t bytes) {
    if (bytes == 0) return;
    if (offset + bytes > n->current.size) {
        m->used_bytes += offset + bytes - n->current.size;
        memdisk_image_resize(&n->current, offset + bytes);
    }
    memcpy(n->current.data + offset, prefix, (size_t)bytes);
    memdisk_image_copy(&n->synced, &n->current);
}

void memdisk_crash(struct disk *d, bool tear, uint64_t seed) {
    struct memdisk *m = memdisk_of(d);
    struct memdisk_node *torn = NULL;
    uint8_t *prefix = NULL;
    uint64_t keep = 0;
    uint64_t offset = m->last_write_offset;
    if (tear && m->last_write_node != NULL && m->last_write_node->dirty) {
        torn = m->last_write_node;
        keep = seed % m->last_write_bytes;
        prefix = base_malloc((unsigned long)keep);
        memcpy(prefix, torn->current.data + offset, (size_t)keep);
    }
    /* Every node still referenced anywhere goes back to its synced image. */
    for (int i = 0; i < m->cur.count; i++) memdisk_crash_node(m, m->cur.entries[i].node);
    for (int i = 0; i < m->durable.count; i++) {
        struct memdisk_node *n = m->durable.entries[i].node;
        if (!memdisk_dir_refers(&m->cur, n)) memdisk_crash_node(m, n);
    }
    struct memdisk_dir lost = m->cur;
    m->cur = m->durable;
    if (torn != NULL && memdisk_dir_refers(&m->cur, torn)) {
        memdisk_crash_tear(m, torn, offset, prefix, keep);
    }
    free(prefix);
    m->last_write_node = NULL;
    m->epoch++;
    for (int i = 0; i < lost.count; i++) memdisk_node_release(m, lost.entries[i].node);
}

int memdisk_peek(struct disk *d, const char *name, const uint8_t **data, uint64_t *bytes) {
    struct memdisk *m = memdisk_of(d);
    int index = memdisk_dir_find(&m->cur, name);
    *data = NULL;
    *bytes = 0;
    if (index < 0) return ERR_NOTFOUND;
    struct memdisk_node *n = m->cur.entries[index].node;
    *data = n->current.data;
    *bytes = n->current.size;
    return 0;
}

int memdisk_poke(struct disk *d, const char *name, const uint8_t *data, uint64_t bytes) {
    struct memdisk *m = memdisk_of(d);
    struct disk_file *f = NULL;
    int rc = memdisk_open(d, name, DISK_OPEN_WRITE | DISK_OPEN_CREATE, &f, NULL);
    if (rc == 0) rc = memdisk_truncate(d, f, 0, NULL);
    if (rc == 0) rc = memdisk_write(d, f, 0, data, (size_t)bytes, NULL);
    if (rc == 0) rc = memdisk_sync(d, f, NULL);
    if (f != NULL) memdisk_close(d, f);
    if (rc == 0) memdisk_dir_commit(m);
    return rc;
}

bool memdisk_exists(struct disk *d, const char *name) {
    return memdisk_dir_find(&memdisk_of(d)->cur, name) >= 0;
}
