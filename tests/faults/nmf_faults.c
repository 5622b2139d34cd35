/* Fault injection for tests (LD_PRELOAD, never linked into the library): makes the n-th call of
 * one function, counted only when called from the main program (the CLI with the library linked
 * in statically, not zlib/OpenBLAS/libgomp), fail with a chosen errno.
 *
 *   NMF_FAULT=write:3:ENOSPC     the 3rd write() or pwrite() fails with ENOSPC (also fsync,
 *                                rename, read (read and pread),
 *                                malloc: malloc/calloc/realloc/aligned_alloc/posix_memalign
 *                                together, failing with ENOMEM)
 *   NMF_FAULT=rename:2:HOLD      the 2nd rename() waits before it is made, then goes on as if
 *   NMF_FAULT_HOLD=DIR           nothing happened: it creates DIR/held, then reads a byte from
 *                                the FIFO DIR/go (made by the test). A test holds the command
 *                                at a known point of its write (temporary file in place) and
 *                                sends it a signal there, which the waiting thread takes (a
 *                                stopped process would let any thread take it);
 *                                tests/io/test_signal_temps.sh
 *   NMF_FAULT_REPORT=FILE        at exit, append "FUNCTION COUNT" lines (calls seen from the
 *                                program) and "injected FUNCTION N" when the fault fired
 * Used by tests/faults/test_fault_sweep.sh, which sweeps n over every call a command makes. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { F_WRITE, F_FSYNC, F_RENAME, F_READ, F_MALLOC, F_COUNT };
static const char *const names[F_COUNT] = {"write", "fsync", "rename", "read", "malloc"};

static int target = -1;      /* function to fail */
static unsigned long nth;    /* which call (1-based) */
static int fault_errno;      /* errno it fails with */
static int hold_instead;     /* HOLD: the call waits (NMF_FAULT_HOLD) instead of failing */
static unsigned long calls[F_COUNT];
static int injected;
static uintptr_t prog_lo, prog_hi; /* the main program's mapped range */
static __thread int busy;          /* no counting inside our own bookkeeping */

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size, (void)data;
    /* the first object is the main program */
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (!prog_lo || lo < prog_lo) prog_lo = lo;
        if (hi > prog_hi) prog_hi = hi;
    }
    return 1;
}

static int errno_by_name(const char *s) {
    if (!strcmp(s, "ENOSPC")) return ENOSPC;
    if (!strcmp(s, "EIO")) return EIO;
    if (!strcmp(s, "ENOMEM")) return ENOMEM;
    if (!strcmp(s, "EDQUOT")) return EDQUOT;
    return EIO;
}

__attribute__((constructor)) static void faults_init(void) {
    busy = 1;
    dl_iterate_phdr(phdr_cb, NULL);
    const char *spec = getenv("NMF_FAULT");
    if (spec) {
        char fn[16] = "", err[16] = "EIO";
        unsigned long n = 0;
        if (sscanf(spec, "%15[a-z]:%lu:%15[A-Z]", fn, &n, err) >= 2)
            for (int i = 0; i < F_COUNT; i++)
                if (!strcmp(fn, names[i])) target = i, nth = n;
        fault_errno = errno_by_name(err);
        hold_instead = !strcmp(err, "HOLD");
    }
    busy = 0;
}

__attribute__((destructor)) static void faults_report(void) {
    busy = 1;
    const char *path = getenv("NMF_FAULT_REPORT");
    FILE *f = path ? fopen(path, "a") : NULL;
    if (f) {
        for (int i = 0; i < F_COUNT; i++) fprintf(f, "%s %lu\n", names[i], calls[i]);
        if (injected) fprintf(f, "injected %s %lu\n", names[target], nth);
        fclose(f);
    }
}

/* Counts a call from `ret` and says whether it is the one to fail. */
static int should_fail(int fn, const void *ret) {
    uintptr_t r = (uintptr_t)ret;
    if (busy || r < prog_lo || r >= prog_hi) return 0;
    unsigned long k = ++calls[fn];
    if (fn != target || k != nth) return 0;
    injected = 1;
    if (hold_instead) { /* held here until the test writes to DIR/go; then the real call */
        busy = 1;
        const char *dir = getenv("NMF_FAULT_HOLD");
        char path[4096];
        snprintf(path, sizeof path, "%s/held", dir ? dir : ".");
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0) close(fd);
        snprintf(path, sizeof path, "%s/go", dir ? dir : ".");
        fd = open(path, O_RDWR | O_CLOEXEC); /* a FIFO: never blocks opened both ways */
        char c;
        if (fd >= 0) {
            if (read(fd, &c, 1) < 0) { /* interrupted: the signal's handler has run */ }
            close(fd);
        }
        busy = 0;
        return 0;
    }
    return 1;
}

#define REAL(name) static __typeof__(name) *real_##name; if (!real_##name) real_##name = dlsym(RTLD_NEXT, #name)

ssize_t write(int fd, const void *buf, size_t n) {
    REAL(write);
    if (should_fail(F_WRITE, __builtin_return_address(0))) return errno = fault_errno, -1;
    return real_write(fd, buf, n);
}

/* The positional forms (the streaming .nmf writer places payloads with pwrite and reads them
 * back with pread) count as writes and reads. pwrite64/pread64 are the same calls under
 * _FILE_OFFSET_BITS=64. */
ssize_t pwrite(int fd, const void *buf, size_t n, off_t at) {
    REAL(pwrite);
    if (should_fail(F_WRITE, __builtin_return_address(0))) return errno = fault_errno, -1;
    return real_pwrite(fd, buf, n, at);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t at) {
    REAL(pwrite64);
    if (should_fail(F_WRITE, __builtin_return_address(0))) return errno = fault_errno, -1;
    return real_pwrite64(fd, buf, n, at);
}

ssize_t pread(int fd, void *buf, size_t n, off_t at) {
    REAL(pread);
    if (should_fail(F_READ, __builtin_return_address(0))) return errno = fault_errno, -1;
    return real_pread(fd, buf, n, at);
}

ssize_t pread64(int fd, void *buf, size_t n, off64_t at) {
    REAL(pread64);
    if (should_fail(F_READ, __builtin_return_address(0))) return errno = fault_errno, -1;
    return real_pread64(fd, buf, n, at);
}

ssize_t read(int fd, void *buf, size_t n) {
    REAL(read);
    if (should_fail(F_READ, __builtin_return_address(0))) return errno = fault_errno, -1;
    return real_read(fd, buf, n);
}

int fsync(int fd) {
    REAL(fsync);
    if (should_fail(F_FSYNC, __builtin_return_address(0))) return errno = fault_errno, -1;
    return real_fsync(fd);
}

int rename(const char *a, const char *b) {
    REAL(rename);
    if (should_fail(F_RENAME, __builtin_return_address(0))) return errno = fault_errno, -1;
    return real_rename(a, b);
}

/* Allocation: glibc's own entry points underneath (dlsym itself allocates, so no RTLD_NEXT here).
 * Not built into the sanitizer run, whose allocator is ASan's. */
#ifndef NMF_FAULTS_NO_MALLOC
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

void *malloc(size_t n) {
    if (should_fail(F_MALLOC, __builtin_return_address(0))) return errno = ENOMEM, NULL;
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
    if (should_fail(F_MALLOC, __builtin_return_address(0))) return errno = ENOMEM, NULL;
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
    if (should_fail(F_MALLOC, __builtin_return_address(0))) return errno = ENOMEM, NULL;
    return __libc_realloc(p, n);
}
void *aligned_alloc(size_t align, size_t n) {
    if (should_fail(F_MALLOC, __builtin_return_address(0))) return errno = ENOMEM, NULL;
    return __libc_memalign(align, n);
}
int posix_memalign(void **out, size_t align, size_t n) {
    if (should_fail(F_MALLOC, __builtin_return_address(0))) return ENOMEM;
    void *p = __libc_memalign(align, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
#endif
