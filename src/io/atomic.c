/* Atomic file replacement and whole-file reads.
 *
 * A write goes to a temporary file in the destination's directory (same filesystem, so rename is
 * atomic), is fsync'ed, renamed over the destination and the directory is fsync'ed so the rename
 * itself survives a crash. Until commit, the old file (if any) is untouched; abort or any failure
 * removes the temporary file. */
#include "nmformer/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct nmf_atomic_file {
    char *path; /* destination */
    char *tmp;  /* temporary file next to it */
    int fd;
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
static mode_t current_umask(void) {
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

nmf_status nmf_atomic_open(const char *path, nmf_atomic_file **out) {
    *out = NULL;
    if (!path || !*path) return nmf_error(NMF_ERR_INVALID_ARG, "atomic write: empty path");
    nmf_atomic_file *f = calloc(1, sizeof *f);
    size_t n = strlen(path);
    if (!f) return nmf_error(NMF_ERR_NOMEM, "atomic write: out of memory");
    f->path = dup_str(path);
    f->tmp = malloc(n + sizeof ".XXXXXX.tmp");
    if (!f->path || !f->tmp) {
        free(f->path);
        free(f->tmp);
        free(f);
        return nmf_error(NMF_ERR_NOMEM, "atomic write: out of memory");
    }
    memcpy(f->tmp, path, n);
    memcpy(f->tmp + n, ".XXXXXX.tmp", sizeof ".XXXXXX.tmp");
    f->fd = mkstemps(f->tmp, 4); /* "<path>.AbC123.tmp" */
    if (f->fd < 0) {
        int e = errno;
        free(f->path);
        free(f->tmp);
        free(f);
        return nmf_error(NMF_ERR_IO, "%s: cannot create temporary file: %s", path, strerror(e));
    }
    /* mkstemp makes 0600; a model file gets the mode open(..., 0666) would give it. */
    if (fchmod(f->fd, 0666 & ~current_umask()) != 0) { /* not fatal: the data is still safe */ }
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
        p += w;
        size -= (size_t)w;
    }
    return NMF_OK;
}

static void atomic_free(nmf_atomic_file *f) {
    free(f->path);
    free(f->tmp);
    free(f);
}

nmf_status nmf_atomic_commit(nmf_atomic_file *f) {
    if (!f) return nmf_error(NMF_ERR_INVALID_ARG, "atomic write: no file");
    if (f->failed) {
        nmf_status st = f->failed;
        nmf_atomic_abort(f);
        return st;
    }
    if (fsync(f->fd) != 0) {
        int e = errno;
        nmf_atomic_abort(f);
        return nmf_error(NMF_ERR_IO, "fsync failed: %s", strerror(e));
    }
    if (close(f->fd) != 0) {
        int e = errno;
        f->fd = -1;
        nmf_atomic_abort(f);
        return nmf_error(NMF_ERR_IO, "close failed: %s", strerror(e));
    }
    f->fd = -1;
    if (rename(f->tmp, f->path) != 0) {
        int e = errno;
        nmf_status st = nmf_error(NMF_ERR_IO, "%s: rename failed: %s", f->path, strerror(e));
        nmf_atomic_abort(f);
        return st;
    }
    /* Make the rename durable. Failure to open the directory (e.g. no read permission) is not an
     * error: the file itself is complete and in place. */
    char *dir = dir_of(f->path);
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
    if (f->fd >= 0) close(f->fd);
    unlink(f->tmp);
    atomic_free(f);
}

nmf_status nmf_read_file(const char *path, size_t max_size, uint8_t **data, size_t *size) {
    *data = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return nmf_error(NMF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return nmf_error(NMF_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return nmf_error(NMF_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > (uint64_t)max_size) {
        close(fd);
        return nmf_error(NMF_ERR_UNSUPPORTED, "%s: file is %lld bytes, over the limit of %zu",
                         path, (long long)st.st_size, max_size);
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n + 1); /* +1: a NUL terminator makes text parsing safe */
    if (!buf) {
        close(fd);
        return nmf_error(NMF_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, n);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            free(buf);
            close(fd);
            return nmf_error(NMF_ERR_IO, "%s: read failed: %s", path, strerror(e));
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        free(buf);
        return nmf_error(NMF_ERR_IO, "%s: file shrank while reading (%zu of %zu bytes)", path,
                         got, n);
    }
    buf[n] = '\0';
    *data = buf;
    *size = n;
    return NMF_OK;
}
