/* Outputs that never destroy anything.
 *
 * A regular file (or a new path) is replaced atomically: the data goes to a temporary file in the
 * destination's directory (same filesystem, so rename is atomic), is fsync'ed, renamed over the
 * destination and the directory is fsync'ed so the rename itself survives a crash. Until commit
 * the old file is untouched; abort or any failure removes the temporary file, and so does a
 * signal where the program asked for that (nmf_cleanup_temps_on_signal). The replacement
 * keeps the old file's permission bits, and a file the user cannot write is refused, as a shell
 * redirection would refuse it.
 *
 * A symlink is written through: its target (followed to the end of the chain, dangling or not)
 * is what gets replaced, atomically, with the temporary file next to the target, so the link
 * stays a link. Devices, FIFOs and sockets cannot be replaced by a file without destroying them,
 * so they are opened and written directly, as is "-" (standard output). A directory is an error.
 */
#include "nmformer/io.h"

#include "io/io_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Symlinks followed before giving up (the kernel's own limit for path resolution). */
#define MAX_LINK_HOPS 40

struct nmf_atomic_file {
    char *path;   /* destination as the caller named it (for messages) */
    char *target; /* what is replaced: path with symlinks resolved */
    char *tmp;    /* temporary file next to target; NULL when writing directly */
    int tmp_slot; /* tmp's registration for removal on a signal (temp_registry.c; 0: none) */
    int fd;
    int own_fd;        /* 0 for standard output, which is not ours to close */
    nmf_status failed; /* first write failure: commit refuses to publish a partial file */
};

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* Directory part of path ("." when there is none). */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return dup_str(".");
    if (slash == path) return dup_str("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, path, n);
    d[n] = '\0';
    return d;
}

/* The process umask, read without changing it (umask() can only be read by setting it, which
 * races with other threads creating files); 022 if /proc does not say. */
mode_t nmf_io_umask(void) {
    mode_t mask = 022;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return mask;
    char line[256];
    unsigned int v;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Umask: %o", &v) == 1) {
            mask = (mode_t)(v & 0777);
            break;
        }
    fclose(f);
    return mask;
}

/* path with every symlink on it followed (the last component only: the directories are the
 * kernel's business); a path that does not exist, or a dangling link's target, is returned as
 * is. Relative link targets are relative to the link's directory. */
static nmf_status resolve_links(const char *path, char **out) {
    *out = NULL;
    char *p = dup_str(path);
    if (!p) return nmf_error(NMF_ERR_NOMEM, "%s: out of memory", path);
    for (int hop = 0; hop <= MAX_LINK_HOPS; hop++) {
        struct stat st;
        if (lstat(p, &st) != 0 || !S_ISLNK(st.st_mode)) {
            *out = p;
            return NMF_OK;
        }
        char link[4096];
        ssize_t n = readlink(p, link, sizeof link);
        if (n < 0 || (size_t)n >= sizeof link) {
            int e = n < 0 ? errno : ENAMETOOLONG;
            free(p);
            return nmf_error(NMF_ERR_IO, "%s: cannot read symlink: %s", path, strerror(e));
        }
        link[n] = '\0';
        char *next;
        if (link[0] == '/') {
            next = dup_str(link);
        } else {
            char *dir = dir_of(p);
            size_t len = dir ? strlen(dir) + 1 + (size_t)n + 1 : 0;
            next = dir ? malloc(len) : NULL;
            if (next) snprintf(next, len, "%s/%s", dir, link);
            free(dir);
        }
        free(p);
        if (!next) return nmf_error(NMF_ERR_NOMEM, "%s: out of memory", path);
        p = next;
    }
    free(p);
    return nmf_error(NMF_ERR_IO, "%s: too many levels of symlinks", path);
}

static void atomic_free(nmf_atomic_file *f) {
    nmf_io_temp_forget(f->tmp_slot); /* renamed or removed by now */
    free(f->path);
    free(f->target);
    free(f->tmp);
    free(f);
}

/* Opens f->target for writing in place (a device, FIFO or socket). */
static nmf_status open_direct(nmf_atomic_file *f) {
    f->fd = open(f->target, O_WRONLY | O_CLOEXEC | O_NOCTTY);
    if (f->fd < 0)
        return nmf_error(NMF_ERR_IO, "%s: cannot open for writing: %s", f->path, strerror(errno));
    f->own_fd = 1;
    return NMF_OK;
}

/* Creates the temporary file "<target>.XXXXXX.tmp" next to f->target with the permission bits
 * `mode`, registered so that a signal removes it (nmf_cleanup_temps_on_signal). */
static nmf_status open_temp(nmf_atomic_file *f, mode_t mode) {
    f->tmp = nmf_io_temp_create(f->target, ".tmp", NMF_IO_TEMP_FILE, NULL, &f->fd, &f->tmp_slot);
    if (!f->tmp)
        return errno == ENOMEM ? nmf_error(NMF_ERR_NOMEM, "atomic write: out of memory")
                               : nmf_error(NMF_ERR_IO, "%s: cannot create temporary file: %s",
                                           f->path, strerror(errno));
    f->own_fd = 1;
    /* made 0600; the output gets the mode it would have had. Not fatal if refused: the data is
     * still safe. */
    if (fchmod(f->fd, mode) != 0) { /* keep 0600 */ }
    return NMF_OK;
}

nmf_status nmf_atomic_open(const char *path, nmf_atomic_file **out) {
    *out = NULL;
    if (!path || !*path) return nmf_error(NMF_ERR_INVALID_ARG, "atomic write: empty path");
    nmf_atomic_file *f = calloc(1, sizeof *f);
    if (!f) return nmf_error(NMF_ERR_NOMEM, "atomic write: out of memory");
    f->fd = -1;
    f->path = dup_str(path);
    if (!f->path) {
        atomic_free(f);
        return nmf_error(NMF_ERR_NOMEM, "atomic write: out of memory");
    }
    if (!strcmp(path, "-")) { /* standard output: written directly, never closed here */
        f->fd = STDOUT_FILENO;
        *out = f;
        return NMF_OK;
    }
    nmf_status st = resolve_links(path, &f->target);
    if (st != NMF_OK) {
        atomic_free(f);
        return st;
    }
    struct stat sb;
    if (stat(f->target, &sb) != 0) {
        if (errno == ENOENT) {
            st = open_temp(f, 0666 & ~nmf_io_umask()); /* a new file */
        } else {
            st = nmf_error(NMF_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        }
    } else if (S_ISDIR(sb.st_mode)) {
        st = nmf_error(NMF_ERR_IO, "%s: is a directory", path);
    } else if (S_ISREG(sb.st_mode)) {
        /* rename would replace a file the user made read-only; refuse it, as `>` would (and
         * also for root, whom access() always lets write: no write bit at all is a request) */
        if (access(f->target, W_OK) != 0 || !(sb.st_mode & 0222))
            st = nmf_error(NMF_ERR_IO, "%s: read-only file, left as it is", path);
        else
            st = open_temp(f, sb.st_mode & 07777);
    } else { /* character/block device, FIFO, socket: replacing it would destroy it */
        st = open_direct(f);
    }
    if (st != NMF_OK) {
        atomic_free(f);
        return st;
    }
    *out = f;
    return NMF_OK;
}

nmf_status nmf_atomic_write(nmf_atomic_file *f, const void *data, size_t size) {
    if (!f) return nmf_error(NMF_ERR_INVALID_ARG, "atomic write: no file");
    if (f->failed) return f->failed;
    const uint8_t *p = data;
    while (size > 0) {
        ssize_t w = write(f->fd, p, size);
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            f->failed = NMF_ERR_IO;
            return nmf_error(NMF_ERR_IO, "%s: write failed: %s", f->path, strerror(e));
        }
        if (w == 0) { /* no progress and no error: treat as a full device rather than spin */
            f->failed = NMF_ERR_IO;
            return nmf_error(NMF_ERR_IO, "%s: write failed: no space written", f->path);
        }
        p += w;
        size -= (size_t)w;
    }
    return NMF_OK;
}

/* Direct outputs: flush what the device keeps (pipes, terminals and /dev/null have nothing to
 * sync and say so with EINVAL/ENOTSUP/EROFS, which is not a failure). */
static nmf_status commit_direct(nmf_atomic_file *f) {
    nmf_status st = NMF_OK;
    if (fsync(f->fd) != 0 && errno != EINVAL && errno != ENOTSUP && errno != EROFS)
        st = nmf_error(NMF_ERR_IO, "%s: fsync failed: %s", f->path, strerror(errno));
    if (f->own_fd && close(f->fd) != 0 && st == NMF_OK)
        st = nmf_error(NMF_ERR_IO, "%s: close failed: %s", f->path, strerror(errno));
    atomic_free(f);
    return st;
}

nmf_status nmf_atomic_commit(nmf_atomic_file *f) {
    if (!f) return nmf_error(NMF_ERR_INVALID_ARG, "atomic write: no file");
    if (f->failed) {
        nmf_status st = f->failed;
        nmf_atomic_abort(f);
        return st;
    }
    if (!f->tmp) return commit_direct(f);
    if (fsync(f->fd) != 0) {
        nmf_status st = nmf_error(NMF_ERR_IO, "%s: fsync failed: %s", f->path, strerror(errno));
        nmf_atomic_abort(f);
        return st;
    }
    int rc = close(f->fd);
    f->fd = -1;
    if (rc != 0) {
        nmf_status st = nmf_error(NMF_ERR_IO, "%s: close failed: %s", f->path, strerror(errno));
        nmf_atomic_abort(f);
        return st;
    }
    if (rename(f->tmp, f->target) != 0) {
        nmf_status st = nmf_error(NMF_ERR_IO, "%s: rename failed: %s", f->path, strerror(errno));
        nmf_atomic_abort(f);
        return st;
    }
    /* Make the rename durable. Failure to open the directory (e.g. no read permission) is not an
     * error: the file itself is complete and in place. */
    char *dir = dir_of(f->target);
    if (dir) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            if (fsync(dfd) != 0) { /* some filesystems refuse fsync on directories */ }
            close(dfd);
        }
        free(dir);
    }
    atomic_free(f);
    return NMF_OK;
}

void nmf_atomic_abort(nmf_atomic_file *f) {
    if (!f) return;
    if (f->fd >= 0 && f->own_fd) close(f->fd);
    if (f->tmp) unlink(f->tmp);
    atomic_free(f);
}

/* Positional access to the temporary file, for writers that fill in a header after the data
 * (the streaming .nmf writer). Only a replaced regular file has one: a device, FIFO or "-" is
 * written in order and says so with NMF_ERR_UNSUPPORTED. */
int nmf_io_atomic_seekable(const nmf_atomic_file *f) { return f && f->tmp != NULL; }

nmf_status nmf_io_atomic_pwrite(nmf_atomic_file *f, uint64_t offset, const void *data, size_t size) {
    if (!nmf_io_atomic_seekable(f)) return nmf_error(NMF_ERR_UNSUPPORTED, "atomic write: not seekable");
    if (f->failed) return f->failed;
    const uint8_t *p = data;
    while (size > 0) {
        ssize_t w = pwrite(f->fd, p, size, (off_t)offset);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            f->failed = NMF_ERR_IO;
            return nmf_error(NMF_ERR_IO, "%s: write failed: %s", f->path, strerror(e));
        }
        p += w;
        size -= (size_t)w;
        offset += (uint64_t)w;
    }
    return NMF_OK;
}

nmf_status nmf_io_atomic_pread(nmf_atomic_file *f, uint64_t offset, void *data, size_t size) {
    if (!nmf_io_atomic_seekable(f)) return nmf_error(NMF_ERR_UNSUPPORTED, "atomic write: not seekable");
    uint8_t *p = data;
    while (size > 0) {
        ssize_t r = pread(f->fd, p, size, (off_t)offset);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
            return nmf_error(NMF_ERR_IO, "%s: reading back the temporary file failed: %s", f->path,
                             r < 0 ? strerror(errno) : "short read");
        p += r;
        size -= (size_t)r;
        offset += (uint64_t)r;
    }
    return NMF_OK;
}
