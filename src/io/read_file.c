/* Whole-file reads: a regular file in one allocation of its size; "-" (standard input), a FIFO
 * or a character device read as a stream into a buffer that grows with what actually arrives,
 * so a stream can never make us allocate more than max_size plus what it sent. */
#include "nmformer/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes of memory the kernel says new allocations can get without swapping (MemAvailable of
 * /proc/meminfo); 0 when that cannot be read (then no check is made). */
static uint64_t memory_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kib = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1) break;
    fclose(f);
    return kib > UINT64_MAX / 1024 ? UINT64_MAX : (uint64_t)kib * 1024;
}

/* First buffer for a stream; doubled as data keeps coming. */
#define STREAM_CHUNK ((size_t)1 << 16)

/* Reads up to want bytes into buf, retrying interrupted and short reads, until want or the end
 * of the input; *got is what arrived. */
static nmf_status read_full(int fd, const char *path, uint8_t *buf, size_t want, size_t *got) {
    *got = 0;
    while (*got < want) {
        ssize_t r = read(fd, buf + *got, want - *got);
        if (r < 0) {
            if (errno == EINTR) continue;
            return nmf_error(NMF_ERR_IO, "%s: read failed: %s", path, strerror(errno));
        }
        if (r == 0) break;
        *got += (size_t)r;
    }
    return NMF_OK;
}

/* Reads fd to its end into *data (NUL-terminated, size excluded); more than max_size is refused. */
static nmf_status read_stream(int fd, const char *path, size_t max_size, uint8_t **data,
                              size_t *size) {
    size_t cap = 0, got = 0;
    uint8_t *buf = NULL;
    for (;;) {
        if (got == cap) {
            if (cap > max_size) {
                free(buf);
                return nmf_error(NMF_ERR_UNSUPPORTED, "%s: input is over the limit of %zu bytes",
                                 path, max_size);
            }
            size_t next = cap ? cap * 2 : STREAM_CHUNK;
            if (next > max_size + 1) next = max_size + 1; /* one byte past the limit detects it */
            uint8_t *t = realloc(buf, next + 1);            /* +1: the NUL terminator */
            if (!t) {
                free(buf);
                return nmf_error(NMF_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, next);
            }
            buf = t;
            cap = next;
        }
        size_t n;
        nmf_status st = read_full(fd, path, buf + got, cap - got, &n);
        if (st != NMF_OK) {
            free(buf);
            return st;
        }
        got += n;
        if (got < cap) break; /* the end of the input */
    }
    if (got > max_size) {
        free(buf);
        return nmf_error(NMF_ERR_UNSUPPORTED, "%s: input is over the limit of %zu bytes", path,
                         max_size);
    }
    buf[got] = '\0';
    *data = buf;
    *size = got;
    return NMF_OK;
}

/* Reads exactly n bytes of a regular file into one buffer of that size. */
static nmf_status read_regular(int fd, const char *path, size_t n, uint8_t **data, size_t *size) {
    uint8_t *buf = malloc(n + 1); /* +1: a NUL terminator makes text parsing safe */
    if (!buf) return nmf_error(NMF_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, n);
    size_t got;
    nmf_status st = read_full(fd, path, buf, n, &got);
    if (st != NMF_OK) {
        free(buf);
        return st;
    }
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

nmf_status nmf_read_file(const char *path, size_t max_size, uint8_t **data, size_t *size) {
    *data = NULL;
    *size = 0;
    if (!path || !*path) return nmf_error(NMF_ERR_INVALID_ARG, "read: empty path");
    if (!strcmp(path, "-")) return read_stream(STDIN_FILENO, "(stdin)", max_size, data, size);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return nmf_error(NMF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    nmf_status rc;
    uint64_t avail;
    if (fstat(fd, &st) != 0) {
        rc = nmf_error(NMF_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    } else if (S_ISREG(st.st_mode)) {
        if (st.st_size < 0 || (uint64_t)st.st_size > (uint64_t)max_size)
            rc = nmf_error(NMF_ERR_UNSUPPORTED, "%s: file is %lld bytes, over the limit of %zu",
                           path, (long long)st.st_size, max_size);
        else if (st.st_size > 0 && (avail = memory_available()) && (uint64_t)st.st_size > avail)
            /* refused before allocating: reading it would have the OOM killer end the process */
            rc = nmf_error(NMF_ERR_NOMEM,
                           "%s: file is %lld bytes, more than the %llu bytes of memory available",
                           path, (long long)st.st_size, (unsigned long long)avail);
        else
            rc = read_regular(fd, path, (size_t)st.st_size, data, size);
    } else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
        rc = read_stream(fd, path, max_size, data, size);
    } else {
        rc = nmf_error(NMF_ERR_IO, "%s: not a regular file%s", path,
                       S_ISDIR(st.st_mode) ? " (a directory)" : "");
    }
    close(fd);
    return rc;
}
