/* Temporary outputs that an interrupted process removes.
 *
 * Every atomic output (atomic.c, atomic_dir.c) lives in a temporary "<target>.XXXXXX.tmp" file or
 * folder until it is renamed into place. A process ended by Ctrl-C or `kill` in between would
 * leave it forever (gigabytes for a large prune). So each temporary is registered here while it
 * exists, and nmf_cleanup_temps_on_signal installs SIGINT/SIGTERM/SIGHUP handlers that remove
 * every registered one and then end the process as the signal would have (exit status 128+sig).
 * The library never installs handlers on its own: only the program (the CLI) decides.
 *
 * What a handler may touch is limited (no malloc, no stdio, no locks), so the registry is a fixed
 * array of slots whose path pointer is published with an atomic store before the temporary is
 * created and taken back with an atomic exchange after it is renamed or removed. The handler
 * takes each pointer with the same exchange, so a temporary is removed by exactly one of them,
 * and a writer that finds its pointer already taken knows that a handler (on another thread) is
 * ending the process and waits for that instead of freeing the name under it. SIGKILL cannot be
 * caught: its leftovers are what docs/RELIABILITY.md describes. */
#define _GNU_SOURCE
#include "nmformer/io.h"

#include "io/io_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Temporaries alive at once: a folder output holds its folder and one file being written; a
 * family write one file. Past this many a temporary is still made, just not removed on a signal. */
#define TEMP_SLOTS 64

_Static_assert(ATOMIC_POINTER_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2,
               "the signal handler needs lock-free atomics");

typedef struct {
    atomic_int used;            /* claimed by a writer */
    _Atomic(const char *) path; /* what a signal removes; NULL: nothing (yet, or any more) */
    const char *restore;        /* NMF_IO_TEMP_ASIDE: the folder's own place */
    int kind;                   /* nmf_io_temp_kind */
    pid_t owner;                /* the process writing it: a forked child (bench model's
                                 * measuring processes) inherits the registry, not the write */
} temp_slot;

static temp_slot slots[TEMP_SLOTS];
static atomic_int dying; /* a handler has begun removing: no new temporary may appear */

static const int handled[] = {SIGINT, SIGTERM, SIGHUP};

/* ---- what the handler does (async-signal-safe calls only) ----------------------------------- */

/* Every entry of a temporary folder (all made by this process: the folder had a fresh name), then
 * the folder. It is first renamed out of the way: a writer on another thread about to move it
 * into place then finds nothing to move (or has moved it already, whole), never a folder half
 * emptied. getdents64 is the bare system call, where opendir would allocate. Entries removed
 * while listing may shift the listing, so it is read again until a pass removes nothing. */
static void remove_folder_now(const char *path) {
    static const char suffix[] = ".gone.tmp";
    char away[4096];
    const size_t len = strlen(path);
    if (len + sizeof suffix <= sizeof away) {
        memcpy(away, path, len);
        memcpy(away + len, suffix, sizeof suffix);
        if (rename(path, away) == 0) path = away;
        else if (errno == ENOENT) return; /* moved into place already, or never made */
    }
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        _Alignas(8) char buf[4096];
        for (int pass = 0; pass < 16; pass++) {
            int removed = 0;
            ssize_t n;
            lseek(fd, 0, SEEK_SET);
            while ((n = getdents64(fd, buf, sizeof buf)) > 0)
                for (ssize_t at = 0; at < n;) {
                    const struct dirent64 *e = (const struct dirent64 *)(buf + at);
                    at += e->d_reclen;
                    const char *s = e->d_name;
                    if (s[0] == '.' && (!s[1] || (s[1] == '.' && !s[2]))) continue;
                    if (unlinkat(fd, s, 0) == 0) removed = 1;
                }
            if (!removed) break;
        }
        close(fd);
    }
    rmdir(path);
}

/* Removes every registered temporary, files first (some live inside the folders). An old folder
 * set aside while a new one moves in goes back to its place if that place is still free (the
 * new folder did not get there), else it is deleted, as the finished write would have. */
static void remove_all_now(void) {
    atomic_store(&dying, 1);
    /* each path is taken first: a slot's kind and restore are its owner's until then */
    const char *path[TEMP_SLOTS];
    const pid_t self = getpid();
    for (int i = 0; i < TEMP_SLOTS; i++) path[i] = atomic_exchange(&slots[i].path, NULL);
    for (int kind = NMF_IO_TEMP_FILE; kind <= NMF_IO_TEMP_FOLDER; kind++)
        for (int i = 0; i < TEMP_SLOTS; i++) {
            if (!path[i] || slots[i].kind != kind || slots[i].owner != self) continue;
            if (kind == NMF_IO_TEMP_FILE)
                unlink(path[i]);
            else if (kind == NMF_IO_TEMP_FOLDER || rename(path[i], slots[i].restore) != 0)
                remove_folder_now(path[i]);
        }
}

static void on_signal(int sig) {
    remove_all_now();
    /* end as the signal would have: default action, raised again; it is blocked while this
     * handler runs and arrives when it returns */
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    raise(sig);
}

nmf_status nmf_cleanup_temps_on_signal(void) {
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof handled / sizeof handled[0]; i++) /* one at a time */
        sigaddset(&sa.sa_mask, handled[i]);
    for (size_t i = 0; i < sizeof handled / sizeof handled[0]; i++) {
        struct sigaction old;
        if (sigaction(handled[i], NULL, &old) != 0)
            return nmf_error(NMF_ERR_IO, "signal %d: cannot read its action: %s", handled[i],
                             strerror(errno));
        /* ignored (nohup, a background job) or handled by the program: left as it is */
        if (old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO)) continue;
        if (sigaction(handled[i], &sa, NULL) != 0)
            return nmf_error(NMF_ERR_IO, "signal %d: cannot install a handler: %s", handled[i],
                             strerror(errno));
    }
    return NMF_OK;
}

/* ---- the writers' side ---------------------------------------------------------------------- */

/* A handler on another thread owns the temporary now and is ending the process: wait for it. */
static void wait_for_the_end(void) {
    for (;;) pause();
}

static void slot_release(int slot) {
    if (slot) atomic_store(&slots[slot - 1].used, 0);
}

/* "<base>.XXXXXX<suffix>" with six letters or digits from a per-process sequence. */
static void temp_name(char *out, size_t cap, const char *base, const char *suffix) {
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    static atomic_uint counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
                 ((uint64_t)atomic_fetch_add(&counter, 1) * 0x9e3779b97f4a7c15ull);
    x ^= x >> 29, x *= 0xbf58476d1ce4e5b9ull, x ^= x >> 32; /* splitmix64's finish */
    char letters[7];
    for (int i = 0; i < 6; i++, x /= 62) letters[i] = abc[x % 62];
    letters[6] = '\0';
    snprintf(out, cap, "%s.%s%s", base, letters, suffix);
}

char *nmf_io_temp_create(const char *base, const char *suffix, nmf_io_temp_kind kind,
                         const char *restore, int *fd, int *slot) {
    *slot = 0;
    if (fd) *fd = -1;
    size_t cap = strlen(base) + 8 + strlen(suffix);
    char *path = malloc(cap);
    if (!path) {
        errno = ENOMEM;
        return NULL;
    }
    int s = 0; /* slot + 1 */
    for (int i = 0; i < TEMP_SLOTS && !s; i++) {
        int free_slot = 0;
        if (atomic_compare_exchange_strong(&slots[i].used, &free_slot, 1)) s = i + 1;
    }
    if (s) {
        slots[s - 1].kind = kind;
        slots[s - 1].restore = restore;
        slots[s - 1].owner = getpid();
    }
    int e = EEXIST;
    for (int attempt = 0; attempt < 100 && e == EEXIST; attempt++) {
        temp_name(path, cap, base, suffix);
        /* registered before it exists: a signal from here on removes it */
        if (s) atomic_store(&slots[s - 1].path, path);
        int made = kind == NMF_IO_TEMP_FILE
                       ? (*fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600)) >= 0
                       : mkdir(path, 0700) == 0;
        e = made ? 0 : errno;
        if (made && atomic_load(&dying)) { /* a handler's sweep may have passed already */
            if (kind == NMF_IO_TEMP_FILE) unlink(path);
            else rmdir(path);
            wait_for_the_end();
        }
        if (made) {
            *slot = s;
            return path;
        }
        if (s && !atomic_exchange(&slots[s - 1].path, NULL)) wait_for_the_end();
    }
    slot_release(s);
    free(path);
    errno = e;
    return NULL;
}

void nmf_io_temp_forget(int slot) {
    if (!slot) return;
    if (!atomic_exchange(&slots[slot - 1].path, NULL)) wait_for_the_end();
    slot_release(slot);
}
