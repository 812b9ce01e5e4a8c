/*
 * Engine views of the data directory (disk_view.h): names in, prefixed names out.
 */
#include "engine/disk_view.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "base/buf.h"
#include "base/util.h"

static struct disk_view *disk_view_of(struct disk *d) {
    struct disk_view *v = d->impl;
    ASSERT(v != NULL && &v->disk == d);
    return v;
}

/* The base name of name, or an error when it would not fit. */
static int disk_view_name(const struct disk_view *v, const char *name, char *out,
                          struct errmsg *msg) {
    int n = snprintf(out, DISK_NAME_BYTES_MAX, "%s%s", v->prefix, name);
    if (n < 0 || n >= DISK_NAME_BYTES_MAX)
        return errmsg_set(msg, ERR_INVALID, "file name %s%s is too long", v->prefix, name);
    return 0;
}

static int disk_view_open(struct disk *d, const char *name, int flags, struct disk_file **out,
                          struct errmsg *msg) {
    struct disk_view *v = disk_view_of(d);
    char full[DISK_NAME_BYTES_MAX];
    int rc = disk_view_name(v, name, full, msg);
    return rc != 0 ? rc : v->base->open(v->base, full, flags, out, msg);
}

static void disk_view_close(struct disk *d, struct disk_file *f) {
    struct disk_view *v = disk_view_of(d);
    v->base->close(v->base, f);
}

static int disk_view_read(struct disk *d, struct disk_file *f, uint64_t offset, void *data,
                          size_t bytes, size_t *read_bytes, struct errmsg *msg) {
    struct disk_view *v = disk_view_of(d);
    return v->base->read(v->base, f, offset, data, bytes, read_bytes, msg);
}

static int disk_view_write(struct disk *d, struct disk_file *f, uint64_t offset, const void *data,
                           size_t bytes, struct errmsg *msg) {
    struct disk_view *v = disk_view_of(d);
    return v->base->write(v->base, f, offset, data, bytes, msg);
}

static int disk_view_allocate(struct disk *d, struct disk_file *f, uint64_t offset, uint64_t bytes,
                              struct errmsg *msg) {
    struct disk_view *v = disk_view_of(d);
    return v->base->allocate(v->base, f, offset, bytes, msg);
}

static int disk_view_size(struct disk *d, struct disk_file *f, uint64_t *bytes,
                          struct errmsg *msg) {
    struct disk_view *v = disk_view_of(d);
    return v->base->size(v->base, f, bytes, msg);
}

static int disk_view_truncate(struct disk *d, struct disk_file *f, uint64_t bytes,
                              struct errmsg *msg) {
    struct disk_view *v = disk_view_of(d);
    return v->base->truncate(v->base, f, bytes, msg);
}

static int disk_view_sync(struct disk *d, struct disk_file *f, struct errmsg *msg) {
    struct disk_view *v = disk_view_of(d);
    return v->base->sync(v->base, f, msg);
}

static int disk_view_rename(struct disk *d, const char *from, const char *to, struct errmsg *msg) {
    struct disk_view *v = disk_view_of(d);
    char a[DISK_NAME_BYTES_MAX];
    char b[DISK_NAME_BYTES_MAX];
    int rc = disk_view_name(v, from, a, msg);
    if (rc == 0) rc = disk_view_name(v, to, b, msg);
    return rc != 0 ? rc : v->base->rename(v->base, a, b, msg);
}

static int disk_view_remove(struct disk *d, const char *name, struct errmsg *msg) {
    struct disk_view *v = disk_view_of(d);
    char full[DISK_NAME_BYTES_MAX];
    int rc = disk_view_name(v, name, full, msg);
    return rc != 0 ? rc : v->base->remove(v->base, full, msg);
}

struct disk_view_list_ctx {
    const struct disk_view *view;
    disk_list_fn *fn;
    void *ctx;
};

static void disk_view_list_one(void *ctx, const char *name) {
    struct disk_view_list_ctx *l = ctx;
    size_t n = strlen(l->view->prefix);
    if (strncmp(name, l->view->prefix, n) == 0 && name[n] != '\0') l->fn(l->ctx, name + n);
}

static int disk_view_list(struct disk *d, disk_list_fn *fn, void *ctx, struct errmsg *msg) {
    struct disk_view *v = disk_view_of(d);
    struct disk_view_list_ctx l = {.view = v, .fn = fn, .ctx = ctx};
    return v->base->list(v->base, disk_view_list_one, &l, msg);
}

static int disk_view_sync_dir(struct disk *d, struct errmsg *msg) {
    struct disk_view *v = disk_view_of(d);
    return v->base->sync_dir(v->base, msg);
}

static struct disk_file *disk_view_dir_file(struct disk *d) {
    struct disk_view *v = disk_view_of(d);
    return v->base->dir_file(v->base);
}

static int disk_view_create_zeroed(struct disk *d, const char *name, uint64_t bytes,
                                   struct disk_file **out, bool *written, struct errmsg *msg) {
    struct disk_view *v = disk_view_of(d);
    char full[DISK_NAME_BYTES_MAX];
    int rc = disk_view_name(v, name, full, msg);
    return rc != 0 ? rc : v->base->create_zeroed(v->base, full, bytes, out, written, msg);
}

static bool disk_view_zeroed_ready(struct disk *d, uint64_t bytes) {
    struct disk_view *v = disk_view_of(d);
    return v->base->zeroed_ready(v->base, bytes);
}

void disk_view_init(struct disk_view *view, struct disk *base, const char *prefix) {
    ASSERT(base != NULL && prefix != NULL);
    ASSERT(strlen(prefix) > 0 && strlen(prefix) < DISK_VIEW_PREFIX_BYTES_MAX);
    memset(view, 0, sizeof(*view));
    view->base = base;
    snprintf(view->prefix, sizeof(view->prefix), "%s", prefix);
    view->disk = (struct disk){.impl = view,
                               .open = disk_view_open,
                               .close = disk_view_close,
                               .read = disk_view_read,
                               .write = disk_view_write,
                               .allocate = disk_view_allocate,
                               .size = disk_view_size,
                               .truncate = disk_view_truncate,
                               .sync = disk_view_sync,
                               .rename = disk_view_rename,
                               .remove = disk_view_remove,
                               .list = disk_view_list,
                               .sync_dir = disk_view_sync_dir,
                               .dir_file = disk_view_dir_file};
    /* Offered when the base offers it (the base's spare is shared by every view). */
    if (base->create_zeroed != NULL && base->zeroed_ready != NULL) {
        view->disk.create_zeroed = disk_view_create_zeroed;
        view->disk.zeroed_ready = disk_view_zeroed_ready;
    }
}

/* The layout before views: the storage files' own names, at the top of the directory. */
static bool disk_view_legacy_name(const char *name) {
    return strncmp(name, "wal-", 4) == 0 || strncmp(name, "snap-", 5) == 0;
}

static void disk_view_collect(void *ctx, const char *name) {
    struct buf *names = ctx;
    if (!disk_view_legacy_name(name)) return;
    buf_append(names, name, strlen(name) + 1);
}

static void disk_view_count(void *ctx, const char *name) {
    if (strcmp(name, DISK_VIEW_ADOPTING) != 0) (*(uint32_t *)ctx)++;
}

/* Moves one legacy file under the view; never over an existing file. */
static int disk_view_adopt_one(struct disk_view *view, const char *name, struct errmsg *msg) {
    char to[DISK_NAME_BYTES_MAX];
    int rc = disk_view_name(view, name, to, msg);
    if (rc != 0) return rc;
    struct disk_file *f = NULL;
    rc = view->base->open(view->base, to, DISK_OPEN_READ, &f, msg);
    if (rc == 0) {
        view->base->close(view->base, f);
        return errmsg_set(msg, ERR_EXISTS,
                          "both %s and %s are in the data directory: one is from before "
                          "engines had their own files; move the one that is not current away",
                          name, to);
    }
    if (rc != ERR_NOTFOUND) return rc;
    return view->base->rename(view->base, name, to, msg);
}

/* The marker says an adoption began: after a crash both layouts are present, and the
 * next start goes on with it instead of refusing to mix them. */
static int disk_view_mark(struct disk_view *view, bool begin, struct errmsg *msg) {
    if (!begin) {
        int rc = view->disk.remove(&view->disk, DISK_VIEW_ADOPTING, msg);
        return rc != 0 ? rc : view->base->sync_dir(view->base, msg);
    }
    struct disk_file *f = NULL;
    int rc = view->disk.open(&view->disk, DISK_VIEW_ADOPTING, DISK_OPEN_WRITE | DISK_OPEN_CREATE,
                             &f, msg);
    if (rc != 0) return rc;
    view->disk.close(&view->disk, f);
    return view->base->sync_dir(view->base, msg);
}

static bool disk_view_marked(struct disk_view *view) {
    struct disk_file *f = NULL;
    if (view->disk.open(&view->disk, DISK_VIEW_ADOPTING, DISK_OPEN_READ, &f, NULL) != 0)
        return false;
    view->disk.close(&view->disk, f);
    return true;
}

int disk_view_adopt(struct disk_view *view, uint32_t *moved_out, struct errmsg *msg) {
    *moved_out = 0;
    struct buf names; /* NUL-terminated names, back to back */
    buf_init(&names);
    uint32_t own = 0;
    int rc = view->base->list(view->base, disk_view_collect, &names, msg);
    if (rc == 0) rc = view->disk.list(&view->disk, disk_view_count, &own, msg);
    bool marked = rc == 0 && names.len > 0 && disk_view_marked(view);
    if (rc == 0 && names.len > 0 && own > 0 && !marked) {
        /* Two histories: adopting the old one would mix its log with this engine's. */
        rc = errmsg_set(msg, ERR_EXISTS,
                        "the data directory holds files from before engines (%s...) and "
                        "files of this engine (%s*): keep one set, move the other away",
                        (const char *)names.data, view->prefix);
    }
    if (rc == 0 && names.len > 0 && !marked) rc = disk_view_mark(view, true, msg);
    uint32_t moved = 0;
    for (size_t pos = 0; rc == 0 && pos < names.len; pos += strlen((char *)names.data + pos) + 1) {
        rc = disk_view_adopt_one(view, (const char *)names.data + pos, msg);
        if (rc == 0) moved++;
    }
    if (rc == 0 && names.len > 0) rc = view->base->sync_dir(view->base, msg);
    if (rc == 0 && names.len > 0) rc = disk_view_mark(view, false, msg);
    buf_deinit(&names);
    *moved_out = moved;
    return rc;
}

/* Whether a file name of the storage code starts at text[i] (a word start). */
static bool disk_view_name_at(const char *text, size_t i) {
    if (i > 0 && (text[i - 1] == '-' || (text[i - 1] >= 'a' && text[i - 1] <= 'z'))) return false;
    return strncmp(text + i, "wal-", 4) == 0 || strncmp(text + i, "snap-", 5) == 0;
}

void disk_view_explain_text(const struct disk_view *view, char *text, size_t cap) {
    ASSERT(cap > 0);
    char out[UTIL_TRACE_LINE_BYTES_MAX];
    size_t n = 0;
    size_t prefix_bytes = strlen(view->prefix);
    size_t room = cap < sizeof(out) ? cap : sizeof(out);
    for (size_t i = 0; text[i] != '\0' && n + 1 < room; i++) {
        if (disk_view_name_at(text, i) && n + prefix_bytes + 1 < room) {
            memcpy(out + n, view->prefix, prefix_bytes);
            n += prefix_bytes;
        }
        out[n++] = text[i];
    }
    out[n] = '\0';
    memcpy(text, out, n + 1);
}

void disk_view_explain(const struct disk_view *view, struct errmsg *msg) {
    if (msg != NULL) disk_view_explain_text(view, msg->text, sizeof(msg->text));
}
