/*
 * struct disk on a real directory (disk_posix.h). Every name is a plain file name inside
 * the directory (no '/', not "." or ".."), resolved with the *at() calls against the
 * directory's descriptor. Errors map errno to ERR_NOSPACE (ENOSPC, EDQUOT), ERR_NOTFOUND
 * (ENOENT) or ERR_IO, with the path and strerror in the message. Reads and writes loop
 * over EINTR and short transfers. This file must never keep a partially written state
 * hidden from the caller: a failed write returns an error, and the caller decides.
 *
 * Log segments (create_zeroed): a thread of this disk writes zeros into "spare-segment.tmp"
 * ahead of need, syncs them, and waits; create_zeroed renames that file to the new segment
 * (under the lock, so that the thread never rewrites a file being taken) and wakes the
 * thread for the next one. The thread writes 1 MiB at a time and syncs every 8 MiB, so that
 * its writeback comes in slices between the log's own fsyncs, at a lower CPU priority. A
 * call that finds no spare ready creates and allocates the file as before (the zeros are
 * then not written), and a failed preparation (a full disk) only costs that.
 */
#include "net/disk_posix.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "base/assert.h"

struct disk_file {
    int fd;
    char name[DISK_NAME_BYTES_MAX];
    bool is_dir; /* the directory's own (dir_file): fsync, not fdatasync */
};

#define DISK_POSIX_SPARE_NAME "spare-segment.tmp"
#define DISK_POSIX_SPARE_CHUNK_BYTES (1u << 20)
#define DISK_POSIX_SPARE_SYNC_BYTES (8u << 20)
#define DISK_POSIX_SPARE_NICE 10

/* The background preparation of one zero-filled segment file; the fields below lock are
 * guarded by it. */
struct disk_posix_spare {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool started; /* the thread runs (started at the first create_zeroed) */
    bool stop;
    uint64_t wanted; /* bytes the next spare should hold; 0: none wanted */
    uint64_t ready;  /* bytes of the spare on disk, written and synced; 0: none */
    bool failed;     /* the last preparation failed: retried at the next create_zeroed */
};

struct disk_posix {
    char dir[DISK_POSIX_PATH_BYTES_MAX];
    int dir_fd;
    struct disk_file dir_file; /* dir_fd, for disk->dir_file */
    struct disk_posix_spare spare;
};

static struct disk_posix *disk_posix_of(struct disk *d) {
    ASSERT(d != NULL);
    ASSERT(d->impl != NULL);
    return d->impl;
}

static int disk_posix_code(int errnum) {
    if (errnum == ENOSPC || errnum == EDQUOT) return ERR_NOSPACE;
    if (errnum == ENOENT) return ERR_NOTFOUND;
    return ERR_IO;
}

/* Sets msg to "<what> <dir>/<name>: <strerror>" and returns the mapped code. */
static int disk_posix_fail(struct disk_posix *p, int errnum, const char *what, const char *name,
                           struct errmsg *msg) {
    return errmsg_set(msg, disk_posix_code(errnum), "%s %s/%s: %s", what, p->dir, name,
                      strerror(errnum));
}

static int disk_posix_check_name(const char *name, struct errmsg *msg) {
    size_t len = strlen(name);
    bool bad = len == 0 || len >= DISK_NAME_BYTES_MAX || strchr(name, '/') != NULL ||
               strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
    if (bad) return errmsg_set(msg, ERR_INVALID, "bad file name '%s'", name);
    return 0;
}

static int disk_posix_open(struct disk *d, const char *name, int flags, struct disk_file **out,
                           struct errmsg *msg) {
    struct disk_posix *p = disk_posix_of(d);
    *out = NULL;
    int rc = disk_posix_check_name(name, msg);
    if (rc != 0) return rc;
    int oflags = O_CLOEXEC;
    if (flags & DISK_OPEN_WRITE) {
        oflags |= O_RDWR;
        if (flags & DISK_OPEN_CREATE) oflags |= O_CREAT;
    } else {
        oflags |= O_RDONLY;
    }
    int fd;
    do {
        fd = openat(p->dir_fd, name, oflags, 0644);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return disk_posix_fail(p, errno, "open", name, msg);
    struct disk_file *f = base_calloc(1, sizeof(*f));
    f->fd = fd;
    snprintf(f->name, sizeof(f->name), "%s", name);
    *out = f;
    return 0;
}

static void disk_posix_close(struct disk *d, struct disk_file *f) {
    (void)disk_posix_of(d);
    if (f == NULL) return;
    /* close() is not retried on EINTR: on Linux the descriptor is already released. */
    close(f->fd);
    free(f);
}

static int disk_posix_read(struct disk *d, struct disk_file *f, uint64_t offset, void *data,
                           size_t bytes, size_t *read_bytes, struct errmsg *msg) {
    struct disk_posix *p = disk_posix_of(d);
    size_t done = 0;
    *read_bytes = 0;
    while (done < bytes) {
        ssize_t n = pread(f->fd, (uint8_t *)data + done, bytes - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return disk_posix_fail(p, errno, "read", f->name, msg);
        if (n == 0) break; /* end of file */
        done += (size_t)n;
    }
    *read_bytes = done;
    return 0;
}

static int disk_posix_write(struct disk *d, struct disk_file *f, uint64_t offset, const void *data,
                            size_t bytes, struct errmsg *msg) {
    struct disk_posix *p = disk_posix_of(d);
    size_t done = 0;
    while (done < bytes) {
        ssize_t n =
            pwrite(f->fd, (const uint8_t *)data + done, bytes - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return disk_posix_fail(p, errno, "write", f->name, msg);
        if (n == 0) return disk_posix_fail(p, ENOSPC, "write", f->name, msg);
        done += (size_t)n;
    }
    ASSERT(done == bytes);
    return 0;
}

static int disk_posix_allocate(struct disk *d, struct disk_file *f, uint64_t offset, uint64_t bytes,
                               struct errmsg *msg) {
    struct disk_posix *p = disk_posix_of(d);
    if (bytes == 0) return 0;
    int err;
    do {
        /* Returns the error number instead of setting errno. Filesystems without
         * fallocate get glibc's emulation (writing zeros), which still reserves. */
        err = posix_fallocate(f->fd, (off_t)offset, (off_t)bytes);
    } while (err == EINTR);
    if (err != 0) return disk_posix_fail(p, err, "allocate", f->name, msg);
    return 0;
}

static int disk_posix_size(struct disk *d, struct disk_file *f, uint64_t *bytes,
                           struct errmsg *msg) {
    struct disk_posix *p = disk_posix_of(d);
    struct stat st;
    *bytes = 0;
    if (fstat(f->fd, &st) != 0) return disk_posix_fail(p, errno, "stat", f->name, msg);
    ASSERT(st.st_size >= 0);
    *bytes = (uint64_t)st.st_size;
    return 0;
}

static int disk_posix_truncate(struct disk *d, struct disk_file *f, uint64_t bytes,
                               struct errmsg *msg) {
    struct disk_posix *p = disk_posix_of(d);
    int rc;
    do {
        rc = ftruncate(f->fd, (off_t)bytes);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) return disk_posix_fail(p, errno, "truncate", f->name, msg);
    return 0;
}

static int disk_posix_sync(struct disk *d, struct disk_file *f, struct errmsg *msg) {
    /* Thread-safe: touches only f. An fsync error is not retried: after a failed
     * fdatasync the kernel may have dropped the dirty pages (the 2018 "fsyncgate"). */
    struct disk_posix *p = disk_posix_of(d);
    int rc;
    do {
        rc = f->is_dir ? fsync(f->fd) : fdatasync(f->fd);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) return disk_posix_fail(p, errno, f->is_dir ? "fsync directory" : "fdatasync",
                                        f->name, msg);
    return 0;
}

static int disk_posix_sync_dir(struct disk *d, struct errmsg *msg) {
    struct disk_posix *p = disk_posix_of(d);
    int rc;
    do {
        rc = fsync(p->dir_fd);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) return disk_posix_fail(p, errno, "fsync directory", ".", msg);
    return 0;
}

static int disk_posix_rename(struct disk *d, const char *from, const char *to, struct errmsg *msg) {
    struct disk_posix *p = disk_posix_of(d);
    int rc = disk_posix_check_name(from, msg);
    if (rc == 0) rc = disk_posix_check_name(to, msg);
    if (rc != 0) return rc;
    if (renameat(p->dir_fd, from, p->dir_fd, to) != 0) {
        return disk_posix_fail(p, errno, "rename", from, msg);
    }
    return 0;
}

static struct disk_file *disk_posix_dir_file(struct disk *d) {
    return &disk_posix_of(d)->dir_file;
}

static int disk_posix_remove(struct disk *d, const char *name, struct errmsg *msg) {
    struct disk_posix *p = disk_posix_of(d);
    int rc = disk_posix_check_name(name, msg);
    if (rc != 0) return rc;
    if (unlinkat(p->dir_fd, name, 0) != 0) return disk_posix_fail(p, errno, "remove", name, msg);
    return 0;
}

static bool disk_posix_is_regular(struct disk_posix *p, const struct dirent *e) {
    if (e->d_type == DT_REG) return true;
    if (e->d_type != DT_UNKNOWN) return false;
    struct stat st;
    if (fstatat(p->dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) return false;
    return S_ISREG(st.st_mode);
}

static int disk_posix_list(struct disk *d, disk_list_fn *fn, void *ctx, struct errmsg *msg) {
    struct disk_posix *p = disk_posix_of(d);
    /* fdopendir takes the descriptor: open the directory afresh rather than dup(), since a
     * duplicate would share (and move) the position of p->dir_fd. */
    int fd = openat(p->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return disk_posix_fail(p, errno, "open directory", ".", msg);
    DIR *dir = fdopendir(fd);
    if (dir == NULL) {
        int err = errno;
        close(fd);
        return disk_posix_fail(p, err, "opendir", ".", msg);
    }
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(dir);
        if (e == NULL) {
            if (errno != 0) rc = disk_posix_fail(p, errno, "readdir", ".", msg);
            break;
        }
        if (e->d_name[0] == '.' && (e->d_name[1] == 0 || strcmp(e->d_name, "..") == 0)) {
            continue;
        }
        if (strlen(e->d_name) >= DISK_NAME_BYTES_MAX || !disk_posix_is_regular(p, e)) continue;
        fn(ctx, e->d_name);
    }
    closedir(dir);
    return rc;
}

/* ---- zero-filled segments, prepared in the background ------------------------------ */

static bool disk_posix_spare_stopping(struct disk_posix *p) {
    pthread_mutex_lock(&p->spare.lock);
    bool stop = p->spare.stop;
    pthread_mutex_unlock(&p->spare.lock);
    return stop;
}

static int disk_posix_spare_fill(int fd, uint64_t offset, uint64_t bytes, const uint8_t *zeros) {
    while (bytes > 0) {
        size_t n =
            bytes < DISK_POSIX_SPARE_CHUNK_BYTES ? (size_t)bytes : DISK_POSIX_SPARE_CHUNK_BYTES;
        ssize_t w = pwrite(fd, zeros, n, (off_t)offset);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return errno;
        if (w == 0) return ENOSPC;
        offset += (uint64_t)w;
        bytes -= (uint64_t)w;
    }
    return 0;
}

/* Writes `bytes` zeros into the spare file and syncs them; an errno on failure (the file
 * is then removed), ECANCELED when the disk is closing. Runs without the lock. */
static int disk_posix_spare_write(struct disk_posix *p, uint64_t bytes, const uint8_t *zeros) {
    int fd = openat(p->dir_fd, DISK_POSIX_SPARE_NAME, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return errno;
    int err = 0;
    for (uint64_t off = 0; err == 0 && off < bytes; off += DISK_POSIX_SPARE_SYNC_BYTES) {
        uint64_t n =
            bytes - off < DISK_POSIX_SPARE_SYNC_BYTES ? bytes - off : DISK_POSIX_SPARE_SYNC_BYTES;
        err = disk_posix_spare_fill(fd, off, n, zeros);
        while (err == 0 && fdatasync(fd) != 0) {
            if (errno != EINTR) err = errno;
        }
        if (err == 0 && disk_posix_spare_stopping(p)) err = ECANCELED;
    }
    close(fd);
    if (err != 0) unlinkat(p->dir_fd, DISK_POSIX_SPARE_NAME, 0);
    return err;
}

static void *disk_posix_spare_main(void *arg) {
    struct disk_posix *p = arg;
    /* Linux: a thread's nice value is its own. Best effort. */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), DISK_POSIX_SPARE_NICE);
    uint8_t *zeros = base_calloc(1, DISK_POSIX_SPARE_CHUNK_BYTES);
    pthread_mutex_lock(&p->spare.lock);
    for (;;) {
        while (!p->spare.stop && (p->spare.wanted == 0 || p->spare.ready != 0))
            pthread_cond_wait(&p->spare.wake, &p->spare.lock);
        if (p->spare.stop) break;
        uint64_t bytes = p->spare.wanted;
        pthread_mutex_unlock(&p->spare.lock);
        int err = disk_posix_spare_write(p, bytes, zeros);
        pthread_mutex_lock(&p->spare.lock);
        if (err == 0 && p->spare.wanted == bytes) {
            p->spare.ready = bytes;
        } else if (err != 0) {
            p->spare.wanted = 0;
            p->spare.failed = true;
        }
    }
    pthread_mutex_unlock(&p->spare.lock);
    free(zeros);
    return NULL;
}

/* With the lock held: asks the thread for a spare of `bytes`, starting it the first time. */
static void disk_posix_spare_want(struct disk_posix *p, uint64_t bytes) {
    p->spare.wanted = bytes;
    if (!p->spare.started)
        p->spare.started = pthread_create(&p->spare.thread, NULL, disk_posix_spare_main, p) == 0;
    pthread_cond_signal(&p->spare.wake);
}

/* With the lock held: takes a ready spare of `bytes` as `name` (true), and asks the thread
 * for the next one. */
static bool disk_posix_spare_take(struct disk_posix *p, const char *name, uint64_t bytes) {
    bool taken = false;
    if (p->spare.ready != 0 && p->spare.ready == bytes) {
        taken = renameat(p->dir_fd, DISK_POSIX_SPARE_NAME, p->dir_fd, name) == 0;
        p->spare.ready = 0;
    } else if (p->spare.ready != 0) {
        p->spare.ready = 0; /* of another size: rewritten */
    }
    p->spare.failed = false;
    disk_posix_spare_want(p, bytes);
    return taken;
}

static int disk_posix_create_zeroed(struct disk *d, const char *name, uint64_t bytes,
                                    struct disk_file **out, bool *written, struct errmsg *msg) {
    struct disk_posix *p = disk_posix_of(d);
    *out = NULL;
    *written = false;
    int rc = disk_posix_check_name(name, msg);
    if (rc != 0) return rc;
    pthread_mutex_lock(&p->spare.lock);
    bool taken = disk_posix_spare_take(p, name, bytes);
    pthread_mutex_unlock(&p->spare.lock);
    rc = disk_posix_open(d, name, DISK_OPEN_WRITE | DISK_OPEN_CREATE, out, msg);
    if (rc == 0 && !taken) {
        rc = disk_posix_truncate(d, *out, 0, msg);
        if (rc == 0) rc = disk_posix_allocate(d, *out, 0, bytes, msg);
    }
    if (rc != 0) {
        disk_posix_close(d, *out);
        *out = NULL;
        return rc;
    }
    *written = taken;
    return 0;
}

static bool disk_posix_zeroed_ready(struct disk *d, uint64_t bytes) {
    struct disk_posix *p = disk_posix_of(d);
    pthread_mutex_lock(&p->spare.lock);
    bool ready = p->spare.ready != 0 && p->spare.ready == bytes;
    /* A segment created before any spare existed: prepare one for it to move to. */
    if (!ready && p->spare.wanted != bytes && !p->spare.failed) disk_posix_spare_want(p, bytes);
    pthread_mutex_unlock(&p->spare.lock);
    return ready;
}

static void disk_posix_spare_stop(struct disk_posix *p) {
    pthread_mutex_lock(&p->spare.lock);
    p->spare.stop = true;
    pthread_cond_signal(&p->spare.wake);
    bool started = p->spare.started;
    pthread_mutex_unlock(&p->spare.lock);
    if (started) pthread_join(p->spare.thread, NULL);
    /* Prepared again by the next run: leave no 64 MiB file behind. */
    unlinkat(p->dir_fd, DISK_POSIX_SPARE_NAME, 0);
    pthread_cond_destroy(&p->spare.wake);
    pthread_mutex_destroy(&p->spare.lock);
}

/* ---- init -------------------------------------------------------------------------- */

static int disk_posix_open_dir(struct disk_posix *p, struct errmsg *msg) {
    if (mkdir(p->dir, 0755) != 0 && errno != EEXIST) {
        return errmsg_set(msg, disk_posix_code(errno), "mkdir %s: %s", p->dir, strerror(errno));
    }
    p->dir_fd = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (p->dir_fd < 0) {
        return errmsg_set(msg, disk_posix_code(errno), "open %s: %s", p->dir, strerror(errno));
    }
    p->dir_file = (struct disk_file){.fd = p->dir_fd, .name = ".", .is_dir = true};
    return 0;
}

int disk_posix_init(struct disk *d, const char *dir, struct errmsg *msg) {
    ASSERT(d != NULL);
    ASSERT(dir != NULL);
    memset(d, 0, sizeof(*d));
    size_t len = strlen(dir);
    if (len == 0 || len >= DISK_POSIX_PATH_BYTES_MAX) {
        return errmsg_set(msg, ERR_INVALID, "data directory path of %zu bytes (max %d)", len,
                          DISK_POSIX_PATH_BYTES_MAX - 1);
    }
    struct disk_posix *p = base_calloc(1, sizeof(*p));
    memcpy(p->dir, dir, len + 1);
    int rc = disk_posix_open_dir(p, msg);
    if (rc != 0) {
        free(p);
        return rc;
    }
    pthread_mutex_init(&p->spare.lock, NULL);
    pthread_cond_init(&p->spare.wake, NULL);
    *d = (struct disk){
        .impl = p,
        .open = disk_posix_open,
        .close = disk_posix_close,
        .read = disk_posix_read,
        .write = disk_posix_write,
        .allocate = disk_posix_allocate,
        .size = disk_posix_size,
        .truncate = disk_posix_truncate,
        .sync = disk_posix_sync,
        .rename = disk_posix_rename,
        .remove = disk_posix_remove,
        .list = disk_posix_list,
        .sync_dir = disk_posix_sync_dir,
        .dir_file = disk_posix_dir_file,
        .create_zeroed = disk_posix_create_zeroed,
        .zeroed_ready = disk_posix_zeroed_ready,
    };
    return 0;
}

void disk_posix_deinit(struct disk *d) {
    struct disk_posix *p = disk_posix_of(d);
    disk_posix_spare_stop(p);
    close(p->dir_fd);
    free(p);
    d->impl = NULL;
}
