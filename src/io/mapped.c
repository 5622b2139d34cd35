/* Read-only windows onto a model file, so that a reader touches only the bytes it needs.
 *
 * A regular file stays on disk: each window is an mmap of just its byte range (page-aligned
 * around it), unmapped when the caller is done, so the address space a reader holds is one
 * tensor's bytes, not the file's (a family far larger than RLIMIT_AS can still be read one
 * candidate at a time), and the pages stay in the page cache rather than in our heap. Before
 * mapping, the file's size is checked again: a file that shrank since it was opened is an
 * error naming the range, not a SIGBUS. (Our writers never shrink a file in place: they
 * rename a new one over it, which leaves an open file intact.)
 * Standard input, FIFOs and character devices cannot be mapped: they are read whole
 * (nmf_read_file) and a window is a slice of that buffer. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io_internal.h"

nmf_status nmf_io_source_open(const char *path, size_t max_size, nmf_io_source *out) {
    memset(out, 0, sizeof *out);
    out->fd = -1;
    out->path = path;
    int fd = path && *path && strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY) : -1;
    struct stat sb;
    if (fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
        if (sb.st_size < 0 || (uint64_t)sb.st_size > (uint64_t)max_size) {
            close(fd);
            return nmf_error(NMF_ERR_UNSUPPORTED, "%s: file is %lld bytes, over the limit of %zu",
                             path, (long long)sb.st_size, max_size);
        }
        out->fd = fd;
        out->size = (uint64_t)sb.st_size;
        return NMF_OK;
    }
    if (fd >= 0) close(fd);
    /* a stream, or an error that nmf_read_file reports in its words (missing, a directory) */
    size_t size = 0;
    nmf_status st = nmf_read_file(path, max_size, &out->mem, &size);
    out->size = size;
    return st;
}

void nmf_io_source_close(nmf_io_source *s) {
    if (s->fd >= 0) close(s->fd);
    free(s->mem);
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

nmf_status nmf_io_window_map(const nmf_io_source *s, uint64_t offset, uint64_t len,
                             nmf_io_window *w) {
    memset(w, 0, sizeof *w);
    if (offset > s->size || len > s->size - offset)
        return nmf_error(NMF_ERR_FORMAT, "%s: bytes [%llu, +%llu) are outside the file (%llu bytes)",
                         s->path, (unsigned long long)offset, (unsigned long long)len,
                         (unsigned long long)s->size);
    if (len == 0) {
        static const uint8_t empty[1];
        w->p = empty;
        return NMF_OK;
    }
    if (s->fd < 0) {
        w->p = s->mem + offset;
        return NMF_OK;
    }
    struct stat sb;
    if (fstat(s->fd, &sb) != 0)
        return nmf_error(NMF_ERR_IO, "%s: cannot stat: %s", s->path, strerror(errno));
    if (sb.st_size < 0 || (uint64_t)sb.st_size < offset + len)
        return nmf_error(NMF_ERR_IO, "%s: the file shrank to %lld bytes since it was opened: "
                         "bytes [%llu, +%llu) are gone", s->path, (long long)sb.st_size,
                         (unsigned long long)offset, (unsigned long long)len);
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t base = offset - offset % page;
    size_t map_len = (size_t)(offset - base + len); /* offset + len <= size <= max_size */
    void *m = mmap(NULL, map_len, PROT_READ, MAP_PRIVATE, s->fd, (off_t)base);
    if (m == MAP_FAILED)
        return nmf_error(errno == ENOMEM ? NMF_ERR_NOMEM : NMF_ERR_IO,
                         "%s: cannot map bytes [%llu, +%llu): %s", s->path,
                         (unsigned long long)offset, (unsigned long long)len, strerror(errno));
    /* read once, front to back (CRC, then decode): the kernel may read ahead and drop behind */
    (void)madvise(m, map_len, MADV_SEQUENTIAL);
    w->map = m;
    w->map_len = map_len;
    w->p = (const uint8_t *)m + (offset - base);
    return NMF_OK;
}

nmf_status nmf_io_read_at(const nmf_io_source *s, uint64_t offset, uint64_t len, void *dst) {
    if (offset > s->size || len > s->size - offset)
        return nmf_error(NMF_ERR_FORMAT, "%s: bytes [%llu, +%llu) are outside the file (%llu bytes)",
                         s->path, (unsigned long long)offset, (unsigned long long)len,
                         (unsigned long long)s->size);
    if (s->fd < 0) {
        if (len) memcpy(dst, s->mem + offset, (size_t)len);
        return NMF_OK;
    }
    for (uint64_t done = 0; done < len;) {
        const ssize_t n = pread(s->fd, (uint8_t *)dst + done, (size_t)(len - done), (off_t)(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            return nmf_error(NMF_ERR_IO, "%s: cannot read bytes [%llu, +%llu): %s", s->path,
                             (unsigned long long)offset, (unsigned long long)len, strerror(errno));
        if (n == 0)
            return nmf_error(NMF_ERR_IO, "%s: the file shrank since it was opened: bytes [%llu, "
                             "+%llu) are gone", s->path, (unsigned long long)offset,
                             (unsigned long long)len);
        done += (uint64_t)n;
    }
    return NMF_OK;
}

void nmf_io_window_unmap(nmf_io_window *w) {
    if (w->map) munmap(w->map, w->map_len);
    memset(w, 0, sizeof *w);
}
