/* Temporary outputs removed on a signal (nmf_cleanup_temps_on_signal, src/io/temp_registry.c).
 * Each case runs in a child process that installs the handlers, starts a write, and holds at a
 * known point of it (reports "ready" on a pipe, then waits forever): with an atomic file half
 * written, a folder output half written, or inside the publish of a folder (this executable's own
 * rename/renameat2 stand in for libc's: the n-th call from a chosen moment holds, before or after
 * doing its work). The parent then sends the signal and checks that the child died of it (exit
 * status 128 + sig in a shell), that no "*.tmp" file or folder is left, and what the destination
 * holds: nothing, the previous file or folder untouched, or the new folder when the swap was done.
 * Also: a signal taken by another thread (the main one blocks it), a forked child of the writer
 * dying of one (it inherits the registry, not the write: the file stays), an ignored SIGHUP that
 * stays ignored, and the library alone installing nothing (the temporary file stays). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/io_internal.h"
#include "nmformer/io.h"
#include "test.h"

static char root[] = "/tmp/nmf_test_signal_cleanup.XXXXXX";

/* ---- in the child: holding at a chosen point ------------------------------------------------ */
static int ready_fd = -1;
static int hold_at;    /* the hold_at-th rename/renameat2 from now holds (0: none) */
static int hold_after; /* ... after doing its work (else before) */

static void hold(void) {
    char c = 'r';
    if (write(ready_fd, &c, 1) != 1) _exit(3);
    for (;;) pause(); /* until the parent's signal ends us */
}

static int should_hold(void) { return hold_at > 0 && --hold_at == 0; }

int rename(const char *from, const char *to) {
    int h = should_hold();
    if (h && !hold_after) hold();
    int rc = renameat(AT_FDCWD, from, AT_FDCWD, to);
    if (h) hold();
    return rc;
}

int renameat2(int dfd_from, const char *from, int dfd_to, const char *to, unsigned int flags) {
    int h = should_hold();
    if (h && !hold_after) hold();
    int rc = (int)syscall(SYS_renameat2, dfd_from, from, dfd_to, to, flags);
    if (h) hold();
    return rc;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) _exit(4);
}

static void atomic_text(const char *path, const char *text) {
    nmf_atomic_file *f;
    if (nmf_atomic_open(path, &f) || nmf_atomic_write(f, text, strlen(text)) || nmf_atomic_commit(f))
        _exit(5);
}

/* A staged folder output at dir with config.json holding `text` (committed in it). */
static void stage_folder(const char *dir, int force, const char *text, nmf_io_staged_dir *d) {
    if (nmf_io_dir_stage(dir, force, d)) _exit(6);
    char *config = nmf_io_dir_file(d, "config.json");
    if (!config) _exit(6);
    atomic_text(config, text);
    free(config);
}

/* What a case does in the child before it holds. */
typedef enum {
    FILE_HALF,        /* an atomic file half written */
    FILE_HALF_THREAD, /* the same, the signal taken by a second thread */
    FILE_HALF_FORKED, /* the same, after a forked child of the writer died of SIGTERM */
    FOLDER_HALF,      /* a folder output: config.json in, the weights' file half written */
    FOLDER_PUBLISH,   /* a folder output's publish, holding at its hold_at-th rename */
} scenario;

static void *idle_thread(void *arg) {
    (void)arg;
    for (;;) pause();
    return NULL;
}

static void child(scenario what, const char *dest, int at, int after, int no_exchange) {
    if (what == FILE_HALF || what == FILE_HALF_THREAD || what == FILE_HALF_FORKED) {
        nmf_atomic_file *f;
        if (nmf_atomic_open(dest, &f) || nmf_atomic_write(f, "half", 4)) _exit(7);
        if (what == FILE_HALF_FORKED) { /* its handler must leave the parent's file alone */
            pid_t kid = fork();
            if (kid == 0) raise(SIGTERM), _exit(11);
            int status;
            if (kid < 0 || waitpid(kid, &status, 0) != kid || !WIFSIGNALED(status)) _exit(11);
        }
        if (what == FILE_HALF_THREAD) {
            pthread_t t;
            if (pthread_create(&t, NULL, idle_thread, NULL)) _exit(7);
            sigset_t set; /* only the new thread can take the signal now */
            sigemptyset(&set);
            sigaddset(&set, SIGINT), sigaddset(&set, SIGTERM), sigaddset(&set, SIGHUP);
            if (pthread_sigmask(SIG_BLOCK, &set, NULL)) _exit(7);
        }
        hold();
    }
    nmf_io_staged_dir d;
    stage_folder(dest, 1, "new\n", &d);
    if (what == FOLDER_HALF) {
        char *weights = nmf_io_dir_file(&d, "model.safetensors");
        nmf_atomic_file *f;
        if (!weights || nmf_atomic_open(weights, &f) || nmf_atomic_write(f, "half", 4)) _exit(8);
        hold();
    }
    nmf_io_dir_no_exchange = no_exchange;
    hold_at = at;
    hold_after = after;
    if (nmf_io_dir_publish(&d)) _exit(9);
    _exit(10); /* never held: the case is wrong */
}

/* ---- in the parent -------------------------------------------------------------------------- */

/* Entries of dir whose name ends in ".tmp". */
static int temps_in(const char *dir) {
    int n = 0;
    DIR *d = opendir(dir);
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        n += len > 4 && !strcmp(e->d_name + len - 4, ".tmp");
    }
    closedir(d);
    return n;
}

/* Contents of a small file ("" when absent). */
static const char *contents(const char *path) {
    static char buf[256];
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    return buf;
}

static int exists(const char *path) {
    struct stat sb;
    return lstat(path, &sb) == 0;
}

/* One case: the scenario run by the child (after installing the handlers, or not; with SIGHUP
 * ignored first, or not), the rename that holds (at, after) for a publish, the signal sent and
 * the one the child must die of (another when sig is ignored: sent after it), and whether a
 * temporary output exists while it holds (not once a new folder is in place). */
typedef struct {
    const char *name, *dest; /* the case's folder root/<name>, the destination in it */
    scenario what;
    int install, ignore_hup;
    int at, after, no_exchange;
    int sig, dies_of;
    int no_temp_while_held;
} test_case;

/* Runs case c in the folder root/<c.name> (made if needed); dest receives the destination's
 * path. Returns the case's folder for the checks of the outcome. */
static const char *run_case(test_case c, char *dest, size_t cap) {
    static char dir[256];
    const char *name = c.name;
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    if (!exists(dir) && mkdir(dir, 0700) != 0) {
        CHECK_MSG(0, "%s: mkdir", name);
        return dir;
    }
    snprintf(dest, cap, "%s/%s", dir, c.dest);
    int ready[2];
    if (pipe(ready) != 0) {
        CHECK_MSG(0, "%s: pipe", name);
        return dir;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(ready[0]);
        ready_fd = ready[1];
        if (c.ignore_hup) signal(SIGHUP, SIG_IGN);
        if (c.install && nmf_cleanup_temps_on_signal() != NMF_OK) _exit(2);
        child(c.what, dest, c.at, c.after, c.no_exchange);
    }
    close(ready[1]);
    char byte;
    ssize_t got = read(ready[0], &byte, 1); /* blocks until the child holds, or dies */
    close(ready[0]);
    int status;
    if (got != 1) {
        waitpid(pid, &status, 0);
        CHECK_MSG(0, "%s: the child never held (status 0x%x)", name, status);
        return dir;
    }
    CHECK_MSG(c.no_temp_while_held ? temps_in(dir) == 0 : temps_in(dir) >= 1,
              "%s: %d temporary outputs while held", name, temps_in(dir));
    kill(pid, c.sig);
    if (c.dies_of != c.sig) kill(pid, c.dies_of); /* sig was ignored: this one ends it */
    waitpid(pid, &status, 0);
    CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == c.dies_of,
              "%s: status 0x%x, not killed by signal %d", name, status, c.dies_of);
    return dir;
}

static void no_temps_left(const char *name, const char *dir) {
    CHECK_MSG(temps_in(dir) == 0, "%s: %d temporary outputs left", name, temps_in(dir));
}

/* dest is a folder holding exactly config.json with `text`. */
static void folder_is(const char *name, const char *dest, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dest);
    CHECK_MSG(!strcmp(contents(path), text), "%s: %s holds '%s', not '%s'", name, path,
              contents(path), text);
    DIR *d = opendir(dest);
    int n = 0;
    if (d) {
        for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
        closedir(d);
    }
    CHECK_MSG(n == 1, "%s: %s holds %d entries, not 1", name, dest, n);
}

static void files(void) {
    const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
    char dest[512], name[64];
    for (int i = 0; i < 3; i++) {
        /* a new file: absent afterwards */
        snprintf(name, sizeof name, "new_file_%d", sigs[i]);
        test_case c = {.name = name, .dest = "out.bin", .what = FILE_HALF, .install = 1,
                       .sig = sigs[i], .dies_of = sigs[i]};
        const char *dir = run_case(c, dest, sizeof dest);
        no_temps_left(name, dir);
        CHECK_MSG(!exists(dest), "%s: the destination exists", name);
        /* an existing file: untouched */
        snprintf(name, sizeof name, "old_file_%d", sigs[i]);
        snprintf(dest, sizeof dest, "%s/%s", root, name);
        mkdir(dest, 0700);
        strcat(dest, "/out.bin");
        write_file(dest, "old\n");
        dir = run_case(c, dest, sizeof dest);
        no_temps_left(name, dir);
        CHECK_MSG(!strcmp(contents(dest), "old\n"), "%s: the previous file changed", name);
    }
    /* the signal on another thread than the writer's */
    test_case c = {.name = "thread", .dest = "out.bin", .what = FILE_HALF_THREAD, .install = 1,
                   .sig = SIGTERM, .dies_of = SIGTERM};
    const char *dir = run_case(c, dest, sizeof dest);
    no_temps_left(c.name, dir);
    CHECK(!exists(dest));
    /* a forked child (bench model measures in one) dying of a signal leaves the parent's write
     * alone: the temporary file is still there while the parent holds (checked by run_case) */
    c = (test_case){.name = "forked", .dest = "out.bin", .what = FILE_HALF_FORKED, .install = 1,
                    .sig = SIGINT, .dies_of = SIGINT};
    dir = run_case(c, dest, sizeof dest);
    no_temps_left(c.name, dir);
    /* nohup: SIGHUP ignored before the call stays ignored (SIGTERM ends the child) */
    c = (test_case){.name = "nohup", .dest = "out.bin", .what = FILE_HALF, .install = 1,
                    .ignore_hup = 1, .sig = SIGHUP, .dies_of = SIGTERM};
    no_temps_left(c.name, run_case(c, dest, sizeof dest));
    /* the library alone installs nothing: the temporary file stays */
    c = (test_case){.name = "no_handlers", .dest = "out.bin", .what = FILE_HALF, .sig = SIGTERM,
                    .dies_of = SIGTERM};
    dir = run_case(c, dest, sizeof dest);
    CHECK_MSG(temps_in(dir) == 1, "no handlers: %d temporary files, not the one left", temps_in(dir));
}

static void folders(void) {
    char dest[512];
    /* a new folder half written */
    test_case c = {.name = "folder_half", .dest = "model", .what = FOLDER_HALF, .install = 1,
                   .sig = SIGTERM, .dies_of = SIGTERM};
    const char *dir = run_case(c, dest, sizeof dest);
    no_temps_left(c.name, dir);
    CHECK(!exists(dest));
    /* a new folder, at its rename into place: before it nothing, after it the new folder */
    c = (test_case){.name = "folder_before", .dest = "model", .what = FOLDER_PUBLISH, .install = 1,
                    .at = 1, .sig = SIGINT, .dies_of = SIGINT};
    dir = run_case(c, dest, sizeof dest);
    no_temps_left(c.name, dir);
    CHECK(!exists(dest));
    c.name = "folder_after", c.after = 1, c.no_temp_while_held = 1;
    dir = run_case(c, dest, sizeof dest);
    no_temps_left(c.name, dir);
    folder_is(c.name, dest, "new\n");

    /* replacing a model folder (--force): every moment of the swap. With renameat2's exchange
     * (one call); without it (old folder aside, new one in: two renames). What the destination
     * holds: the old folder until the new one is in, then the new one. */
    static const struct {
        const char *name;
        int at, after, no_exchange;
        const char *want;
    } swaps[] = {
        {"swap_before", 1, 0, 0, "old\n"}, {"swap_after", 1, 1, 0, "new\n"},
        {"aside_before", 1, 0, 1, "old\n"}, {"aside_moved", 1, 1, 1, "old\n"},
        {"aside_new_in", 2, 1, 1, "new\n"},
    };
    for (size_t i = 0; i < sizeof swaps / sizeof swaps[0]; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s", root, swaps[i].name);
        mkdir(path, 0700);
        strcat(path, "/model");
        mkdir(path, 0755);
        strcat(path, "/config.json");
        write_file(path, "old\n");
        c = (test_case){.name = swaps[i].name, .dest = "model", .what = FOLDER_PUBLISH,
                        .install = 1, .at = swaps[i].at, .after = swaps[i].after,
                        .no_exchange = swaps[i].no_exchange, .sig = SIGTERM, .dies_of = SIGTERM};
        dir = run_case(c, dest, sizeof dest);
        no_temps_left(swaps[i].name, dir);
        folder_is(swaps[i].name, dest, swaps[i].want);
    }
}

int main(void) {
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    files();
    folders();
    if (!test_failures) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", root);
        if (system(cmd) != 0) { /* left in /tmp */ }
    } else {
        fprintf(stderr, "left for inspection: %s\n", root);
    }
    return test_finish("test_signal_cleanup");
}
