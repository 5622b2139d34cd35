/* A folder written whole or not at all (io_internal.h): the files are written into a temporary
 * folder next to the destination, which is then renamed into place. A reader of the destination
 * sees the old folder or the new one, never a folder with config.json but half a
 * model.safetensors; a crash leaves at most a "<dir>.XXXXXX.tmp" folder beside it, a signal
 * nothing where the program asked for that (nmf_cleanup_temps_on_signal).
 *
 * Replacing a non-empty folder needs force, and only a folder that looks like a model folder
 * (config.json, no subfolder) is replaced: `convert m.nmf ~ --force` must not delete a home
 * directory. The new folder is swapped in atomically with renameat2(RENAME_EXCHANGE) where the
 * filesystem supports it; otherwise the old one is renamed aside first, and put back if the new
 * one cannot be moved in. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io_internal.h"

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* What a folder holds: entries (but . and ..), whether config.json is one of them, and the first
 * entry that is a folder (or anything but a regular file or a symlink), "" if none. */
static nmf_status scan(const char *path, size_t *entries, int *has_config, char *odd, size_t cap) {
    *entries = 0;
    *has_config = 0;
    odd[0] = '\0';
    DIR *dir = opendir(path);
    if (!dir) return nmf_error(NMF_ERR_IO, "%s: cannot list the folder: %s", path, strerror(errno));
    int fd = dirfd(dir);
    for (struct dirent *e; (e = readdir(dir));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        (*entries)++;
        if (!strcmp(e->d_name, "config.json")) *has_config = 1;
        struct stat sb;
        if (!odd[0] && (fstatat(fd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
                        !(S_ISREG(sb.st_mode) || S_ISLNK(sb.st_mode))))
            snprintf(odd, cap, "%s", e->d_name);
    }
    closedir(dir);
    return NMF_OK;
}

/* Unlinks every file of a folder we made or emptied (no subfolders: scan checked), then the
 * folder. Best effort: what cannot be removed stays (it is never the destination). */
static void remove_folder(const char *path) {
    DIR *dir = opendir(path);
    if (dir) {
        int fd = dirfd(dir);
        for (struct dirent *e; (e = readdir(dir));)
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlinkat(fd, e->d_name, 0);
        closedir(dir);
    }
    rmdir(path);
}

/* fsync of a folder, so that the names in it survive a crash; some filesystems refuse it, which
 * is not an error (the data files are synced already). */
static void sync_folder(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    if (fsync(fd) != 0) { /* e.g. EINVAL on some network filesystems */ }
    close(fd);
}

/* The folder that holds path ("." when there is none). */
static char *parent_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return dup_str(".");
    if (slash == path) return dup_str("/");
    char *d = dup_str(path);
    if (d) d[slash - path] = '\0';
    return d;
}

static void staged_free(nmf_io_staged_dir *d) {
    nmf_io_temp_forget(d->tmp_slot); /* moved into place or removed by now */
    free(d->dir);
    free(d->tmp);
    memset(d, 0, sizeof *d);
}

nmf_status nmf_io_dir_stage(const char *dir, int force, nmf_io_staged_dir *out) {
    memset(out, 0, sizeof *out);
    if (!dir || !*dir) return nmf_error(NMF_ERR_INVALID_ARG, "output folder: empty path");
    out->dir = dup_str(dir);
    if (!out->dir) return nmf_error(NMF_ERR_NOMEM, "%s: out of memory", dir);
    for (size_t n = strlen(out->dir); n > 1 && out->dir[n - 1] == '/'; n--) out->dir[n - 1] = '\0';
    const char *path = out->dir;
    nmf_status st = NMF_OK;
    mode_t mode = 0777 & ~nmf_io_umask(); /* what mkdir would give */
    struct stat sb;
    if (lstat(path, &sb) == 0) {
        size_t entries;
        int has_config;
        char odd[256];
        if (S_ISLNK(sb.st_mode))
            st = nmf_error(NMF_ERR_IO, "%s: is a symbolic link; give the folder itself", path);
        else if (!S_ISDIR(sb.st_mode))
            st = nmf_error(NMF_ERR_IO, "%s: exists and is not a folder, left as it is", path);
        else if (!(st = scan(path, &entries, &has_config, odd, sizeof odd)) && entries) {
            if (!force)
                st = nmf_error(NMF_ERR_IO, "%s: folder exists and is not empty (--force replaces "
                               "a model folder)", path);
            else if (odd[0])
                st = nmf_error(NMF_ERR_IO, "%s: holds '%s', which is not a file: not a model "
                               "folder, left as it is", path, odd);
            else if (!has_config)
                st = nmf_error(NMF_ERR_IO, "%s: holds no config.json: not a model folder, left "
                               "as it is", path);
            out->replace = 1;
        }
        mode = sb.st_mode & 07777;
    } else if (errno != ENOENT) {
        st = nmf_error(NMF_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    /* "<dir>.XXXXXX.tmp", registered so that a signal removes it and what is written in it */
    if (!st && !(out->tmp = nmf_io_temp_create(path, ".tmp", NMF_IO_TEMP_FOLDER, NULL, NULL,
                                                &out->tmp_slot)))
        st = nmf_error(NMF_ERR_IO, "%s: cannot create a temporary folder next to it: %s", path,
                       strerror(errno));
    /* made 0700; the result gets the mode the folder has or would have had */
    if (!st && chmod(out->tmp, mode) != 0) { /* keep 0700: the data is still safe */ }
    if (st) staged_free(out);
    return st;
}

char *nmf_io_dir_file(const nmf_io_staged_dir *d, const char *name) {
    return nmf_io_path_join(d->tmp, name);
}

void nmf_io_dir_discard(nmf_io_staged_dir *d) {
    if (!d) return;
    if (d->tmp) remove_folder(d->tmp);
    staged_free(d);
}

int nmf_io_dir_no_exchange = 0;

/* Replaces the non-empty folder d->dir by d->tmp; *old receives where the old folder now is and
 * *old_slot its registration (removed on a signal until it is deleted). */
static nmf_status swap_in(nmf_io_staged_dir *d, char **old, int *old_slot) {
    *old = NULL;
    *old_slot = 0;
    errno = ENOSYS;
    if (!nmf_io_dir_no_exchange && renameat2(AT_FDCWD, d->tmp, AT_FDCWD, d->dir, RENAME_EXCHANGE) == 0) {
        *old = d->tmp; /* the old folder has the temporary name now, and its registration */
        *old_slot = d->tmp_slot;
        d->tmp = NULL;
        d->tmp_slot = 0;
        return NMF_OK;
    }
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        return nmf_error(NMF_ERR_IO, "%s: cannot swap the new folder in: %s", d->dir, strerror(errno));
    /* no atomic exchange here: the old folder goes aside (onto an empty folder reserving a
     * name), the new one in, and the old one back if that fails; a signal in between puts it
     * back too (NMF_IO_TEMP_ASIDE) */
    int aside_slot;
    char *aside = nmf_io_temp_create(d->dir, ".old.tmp", NMF_IO_TEMP_ASIDE, d->dir, NULL, &aside_slot);
    if (!aside || rename(d->dir, aside) != 0) {
        nmf_status st = nmf_error(NMF_ERR_IO, "%s: cannot move the old folder aside: %s", d->dir,
                                  strerror(errno));
        if (aside) rmdir(aside);
        nmf_io_temp_forget(aside_slot);
        free(aside);
        return st;
    }
    if (rename(d->tmp, d->dir) != 0) {
        nmf_status st = nmf_error(NMF_ERR_IO, "%s: cannot move the new folder in: %s", d->dir,
                                  strerror(errno));
        if (rename(aside, d->dir) != 0) { /* the old folder stays at `aside`, intact */ }
        nmf_io_temp_forget(aside_slot);
        free(aside);
        return st;
    }
    *old = aside;
    *old_slot = aside_slot;
    return NMF_OK;
}

nmf_status nmf_io_dir_publish(nmf_io_staged_dir *d) {
    if (!d || !d->tmp) return nmf_error(NMF_ERR_INVALID_ARG, "output folder: nothing staged");
    sync_folder(d->tmp);
    nmf_status st = NMF_OK;
    char *old = NULL;
    int old_slot = 0;
    if (!d->replace) {
        /* a new name, or an empty folder, which rename replaces atomically */
        if (rename(d->tmp, d->dir) != 0)
            st = nmf_error(NMF_ERR_IO, "%s: cannot move the new folder in: %s", d->dir,
                           errno == ENOTEMPTY || errno == EEXIST
                               ? "it is no longer empty"
                               : strerror(errno));
    } else {
        st = swap_in(d, &old, &old_slot);
    }
    if (st) {
        nmf_io_dir_discard(d);
        return st;
    }
    if (old) {
        remove_folder(old);
        nmf_io_temp_forget(old_slot);
        free(old);
    }
    char *parent = parent_of(d->dir);
    if (parent) sync_folder(parent);
    free(parent);
    staged_free(d);
    return NMF_OK;
}
