/* Outputs that never destroy anything (issue 13 item 3): what nmf_atomic_* does with each kind of
 * destination, and what nmf_read_file does with each kind of input. Everything is made in a temp
 * dir; the only system file used is /dev/null, reached through a symlink and only written to. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nmformer/io.h"
#include "test.h"

static char dir[] = "/tmp/nmf_test_outputs_XXXXXX";

static const char *tp(const char *name) {
    static char buf[4][512];
    static int k = 0;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void big_file_refused(void); /* below */

static void put(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    fputs(text, f);
    fclose(f);
}

/* The file's content as a string ("" when unreadable), in a static buffer. */
static const char *content(const char *path) {
    static char buf[256];
    buf[0] = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return buf;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static nmf_status write_all(const char *path, const char *text) {
    nmf_atomic_file *f;
    nmf_status st = nmf_atomic_open(path, &f);
    if (st != NMF_OK) return st;
    st = nmf_atomic_write(f, text, strlen(text));
    if (st != NMF_OK) {
        nmf_atomic_abort(f);
        return st;
    }
    return nmf_atomic_commit(f);
}

/* Temporary files left in d ("*.tmp"). */
static int temp_files(const char *d) {
    DIR *h = opendir(d);
    if (!h) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(h))) {
        size_t len = strlen(e->d_name);
        n += len > 4 && !strcmp(e->d_name + len - 4, ".tmp");
    }
    closedir(h);
    return n;
}

static void test_regular(void) {
    umask(022);
    CHECK_OK(write_all(tp("new"), "one"));
    struct stat a, b;
    CHECK(stat(tp("new"), &a) == 0 && (a.st_mode & 07777) == 0644);
    CHECK(!strcmp(content(tp("new")), "one"));
    /* an existing file is replaced atomically (a new inode) and keeps its permission bits */
    CHECK(chmod(tp("new"), 0640) == 0 && stat(tp("new"), &a) == 0);
    CHECK_OK(write_all(tp("new"), "two"));
    CHECK(stat(tp("new"), &b) == 0 && b.st_ino != a.st_ino && (b.st_mode & 07777) == 0640);
    CHECK(!strcmp(content(tp("new")), "two"));
    /* abort: the old file is untouched and no temporary file stays */
    nmf_atomic_file *f;
    CHECK_OK(nmf_atomic_open(tp("new"), &f));
    CHECK_OK(nmf_atomic_write(f, "three", 5));
    CHECK(temp_files(dir) == 1);
    nmf_atomic_abort(f);
    CHECK(!strcmp(content(tp("new")), "two") && temp_files(dir) == 0);
    /* a read-only file is refused (also for root), left as it is */
    put(tp("ro"), "keep");
    CHECK(chmod(tp("ro"), 0444) == 0);
    nmf_clear_error();
    CHECK_STATUS(write_all(tp("ro"), "lost"), NMF_ERR_IO);
    CHECK_MSG(strstr(nmf_last_error(), "read-only") != NULL, "%s", nmf_last_error());
    CHECK(!strcmp(content(tp("ro")), "keep") && temp_files(dir) == 0);
    /* a directory is an error, and stays a directory */
    CHECK(mkdir(tp("d"), 0755) == 0);
    CHECK_STATUS(write_all(tp("d"), "x"), NMF_ERR_IO);
    CHECK_MSG(strstr(nmf_last_error(), "is a directory") != NULL, "%s", nmf_last_error());
    CHECK(stat(tp("d"), &a) == 0 && S_ISDIR(a.st_mode) && temp_files(tp("d")) == 0);
    /* a missing directory on the way: a clear error */
    CHECK_STATUS(write_all(tp("nodir/x"), "x"), NMF_ERR_IO);
    CHECK_STATUS(write_all("", "x"), NMF_ERR_INVALID_ARG);
}

static void test_symlinks(void) {
    CHECK(mkdir(tp("sub"), 0755) == 0);
    put(tp("sub/target"), "old");
    CHECK(chmod(tp("sub/target"), 0600) == 0);
    CHECK(symlink("sub/target", tp("link")) == 0); /* relative, resolved from the link's dir */
    CHECK(symlink("link", tp("link2")) == 0);      /* a chain */
    CHECK_OK(write_all(tp("link2"), "new"));
    struct stat st;
    CHECK(lstat(tp("link"), &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(lstat(tp("link2"), &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(lstat(tp("sub/target"), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600);
    CHECK(!strcmp(content(tp("sub/target")), "new"));
    CHECK(temp_files(dir) == 0 && temp_files(tp("sub")) == 0);
    /* while open, the temporary file lives next to the target, not next to the link */
    nmf_atomic_file *f;
    CHECK_OK(nmf_atomic_open(tp("link"), &f));
    CHECK(temp_files(tp("sub")) == 1 && temp_files(dir) == 0);
    nmf_atomic_abort(f);
    CHECK(!strcmp(content(tp("sub/target")), "new") && temp_files(tp("sub")) == 0);
    /* a dangling link: its target is created, the link stays */
    CHECK(symlink(tp("sub/created"), tp("dangling")) == 0); /* absolute */
    CHECK_OK(write_all(tp("dangling"), "made"));
    CHECK(lstat(tp("dangling"), &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(!strcmp(content(tp("sub/created")), "made"));
    /* a loop is an error, not a hang */
    CHECK(symlink("loop_b", tp("loop_a")) == 0 && symlink("loop_a", tp("loop_b")) == 0);
    CHECK_STATUS(write_all(tp("loop_a"), "x"), NMF_ERR_IO);
    CHECK(lstat(tp("loop_a"), &st) == 0 && S_ISLNK(st.st_mode));
    /* a link to a read-only file or a directory: refused like the target itself */
    CHECK(symlink("ro", tp("link_ro")) == 0 && symlink("d", tp("link_d")) == 0);
    CHECK_STATUS(write_all(tp("link_ro"), "lost"), NMF_ERR_IO);
    CHECK(!strcmp(content(tp("ro")), "keep"));
    CHECK_STATUS(write_all(tp("link_d"), "x"), NMF_ERR_IO);
    /* a device behind a link (/dev/null): written directly, never replaced */
    CHECK(symlink("/dev/null", tp("null")) == 0);
    CHECK_OK(write_all(tp("null"), "discarded"));
    CHECK(stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode));
    CHECK(lstat(tp("null"), &st) == 0 && S_ISLNK(st.st_mode));
}

/* A FIFO is written directly: a child reads it, the FIFO stays a FIFO. */
static void test_fifo(void) {
    CHECK(mkfifo(tp("fifo"), 0600) == 0);
    char got_path[512];
    snprintf(got_path, sizeof got_path, "%s", tp("fifo_got"));
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) { /* reader: copies the FIFO into a file */
        int in = open(tp("fifo"), O_RDONLY), out = open(got_path, O_WRONLY | O_CREAT, 0600);
        char buf[256];
        ssize_t n;
        while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
            if (write(out, buf, (size_t)n) != n) _exit(1);
        _exit(in >= 0 && out >= 0 ? 0 : 1);
    }
    CHECK_OK(write_all(tp("fifo"), "through the pipe"));
    int status = -1;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(!strcmp(content(got_path), "through the pipe"));
    struct stat st;
    CHECK(lstat(tp("fifo"), &st) == 0 && S_ISFIFO(st.st_mode) && temp_files(dir) == 0);
}

/* "-" writes to standard output: here a pipe dup'ed onto fd 1 for the duration. */
static void test_stdout(void) {
    int p[2];
    CHECK(pipe(p) == 0);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    CHECK(dup2(p[1], STDOUT_FILENO) == STDOUT_FILENO);
    close(p[1]);
    nmf_status st = write_all("-", "to stdout");
    /* stdout must still be open after commit: the library does not close what it did not open */
    int still_open = fcntl(STDOUT_FILENO, F_GETFD) != -1;
    dup2(saved, STDOUT_FILENO);
    close(saved);
    CHECK_OK(st);
    CHECK(still_open);
    char buf[64] = {0};
    ssize_t n = read(p[0], buf, sizeof buf - 1);
    close(p[0]);
    CHECK(n == 9 && !strcmp(buf, "to stdout"));
    CHECK(temp_files(".") == 0 && access("-", F_OK) != 0); /* no file named "-" */
}

/* Inputs: "-" and FIFOs are read as streams with the same size limit; directories refused. */
static void test_inputs(void) {
    uint8_t *data;
    size_t size;
    /* stdin: a pipe fed by a child, bigger than the first stream chunk so the buffer grows */
    enum { BIG = 200000 };
    int p[2];
    CHECK(pipe(p) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        char chunk[1000];
        for (int i = 0; i < BIG / 1000; i++) {
            memset(chunk, 'a' + i % 26, sizeof chunk);
            if (write(p[1], chunk, sizeof chunk) != (ssize_t)sizeof chunk) _exit(1);
        }
        _exit(0);
    }
    close(p[1]);
    int saved = dup(STDIN_FILENO);
    CHECK(dup2(p[0], STDIN_FILENO) == STDIN_FILENO);
    close(p[0]);
    CHECK_OK(nmf_read_file("-", BIG, &data, &size));
    dup2(saved, STDIN_FILENO);
    close(saved);
    waitpid(pid, NULL, 0);
    CHECK(size == BIG && data && data[0] == 'a' && data[BIG - 1] == 'a' + (BIG / 1000 - 1) % 26 &&
          data[BIG] == 0);
    free(data);
    /* a FIFO over the limit is refused, not read to the end of memory */
    CHECK(mkfifo(tp("fifo_in"), 0600) == 0);
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        int fd = open(tp("fifo_in"), O_WRONLY);
        char chunk[4096] = {0};
        for (int i = 0; i < 64; i++)
            if (write(fd, chunk, sizeof chunk) < 0) break; /* the reader may stop early */
        _exit(0);
    }
    CHECK_STATUS(nmf_read_file(tp("fifo_in"), 100000, &data, &size), NMF_ERR_UNSUPPORTED);
    CHECK(data == NULL);
    waitpid(pid, NULL, 0);
    /* a regular file over the limit, a directory, a missing file */
    put(tp("small"), "12345");
    CHECK_STATUS(nmf_read_file(tp("small"), 4, &data, &size), NMF_ERR_UNSUPPORTED);
    CHECK_OK(nmf_read_file(tp("small"), 5, &data, &size));
    CHECK(size == 5 && !strcmp((char *)data, "12345"));
    free(data);
    CHECK_STATUS(nmf_read_file(dir, 100, &data, &size), NMF_ERR_IO);
    CHECK(strstr(nmf_last_error(), "not a regular file") != NULL);
    big_file_refused();
    CHECK_STATUS(nmf_read_file(tp("missing"), 100, &data, &size), NMF_ERR_IO);
    /* /dev/null through a link reads as an empty stream */
    CHECK_OK(nmf_read_file(tp("null"), 100, &data, &size));
    CHECK(size == 0);
    free(data);
}

/* A file larger than the memory the machine has available is refused before anything is
 * allocated (the OOM killer would end the process otherwise) by nmf_read_file; the model readers
 * map such a file instead of reading it (src/io/mapped.c), so the safetensors reader reads its
 * 8-byte header (zero here) and refuses it as malformed, having allocated nothing. The file is
 * sparse: 1 GiB more than MemAvailable, no disk used. Skipped where that would exceed the
 * readers' own 64 GiB limit or where /proc/meminfo is missing. */
static void big_file_refused(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    unsigned long long kib = 0;
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1) break;
    if (f) fclose(f);
    const unsigned long long bytes = kib * 1024ull + (1ull << 30);
    if (!kib || bytes >= (60ull << 30)) {
        printf("test_output_targets: file larger than memory: skipped (MemAvailable %llu kB)\n", kib);
        return;
    }
    int fd = open(tp("sparse.safetensors"), O_CREAT | O_TRUNC | O_WRONLY, 0600);
    CHECK(fd >= 0 && ftruncate(fd, (off_t)bytes) == 0);
    if (fd >= 0) close(fd);
    uint8_t *data = NULL;
    size_t size = 0;
    CHECK_STATUS(nmf_read_file(tp("sparse.safetensors"), (size_t)64 << 30, &data, &size), NMF_ERR_NOMEM);
    CHECK_MSG(strstr(nmf_last_error(), "bytes of memory available") != NULL, "%s", nmf_last_error());
    CHECK(data == NULL);
    nmf_tensor_set set;
    CHECK_STATUS(nmf_safetensors_read(tp("sparse.safetensors"), &set), NMF_ERR_FORMAT);
    CHECK(strstr(nmf_last_error(), "not a JSON object") != NULL && set.count == 0);
    unlink(tp("sparse.safetensors"));
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_regular();
    test_symlinks();
    test_fifo();
    test_stdout();
    test_inputs();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s' && rm -rf '%s'", dir, dir);
    CHECK(system(cmd) == 0);
    return test_finish("output_targets");
}
