/* Text corpora for the byte-level LM: '%'-separated documents (the fortune format), split into
 * train / valid / test by a hash of each document. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nmformer/data.h"
#include "nmformer/io.h"

static const char *const text_split_names[] = {"train", "valid", "test"};

const char *nmf_text_split_name(nmf_text_split s) {
    return (unsigned)s < NMF_TEXT_SPLITS ? text_split_names[s] : "?";
}

nmf_text_split nmf_corpus_doc_split(const uint8_t *doc, size_t n) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ doc[i]) * 0x100000001B3ull;
    switch (h % 20) {
    case 0: return NMF_TEXT_TEST;
    case 1: return NMF_TEXT_VALID;
    default: return NMF_TEXT_TRAIN;
    }
}

/* a growing byte buffer */
typedef struct {
    uint8_t *p;
    size_t len, cap;
} bytes;

static nmf_status append(bytes *b, const uint8_t *src, size_t n) {
    if (n > NMF_CORPUS_MAX_BYTES - b->len)
        return nmf_error(NMF_ERR_INVALID_ARG, "corpus larger than %zu bytes", NMF_CORPUS_MAX_BYTES);
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + n) cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) return nmf_error(NMF_ERR_NOMEM, "corpus text (%zu bytes)", cap);
        b->p = q, b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
    return NMF_OK;
}

/* 1 when [p, p+n) is only whitespace */
static int blank(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r') return 0;
    return 1;
}

/* Adds one document (a non-blank one) to its split: its bytes, then "%\n". */
static nmf_status add_doc(nmf_corpus *c, bytes *out, const uint8_t *doc, size_t n) {
    if (blank(doc, n)) return NMF_OK;
    nmf_text_split s = nmf_corpus_doc_split(doc, n);
    nmf_status st = append(&out[s], doc, n);
    if (st == NMF_OK) st = append(&out[s], (const uint8_t *)"%\n", 2);
    if (st == NMF_OK) c->docs[s]++;
    return st;
}

/* Splits one file's bytes at lines that hold only "%" (a last line without its newline too). */
static nmf_status add_file(nmf_corpus *c, bytes *out, const uint8_t *d, size_t n) {
    size_t doc = 0, line = 0;
    nmf_status st = NMF_OK;
    while (line < n && st == NMF_OK) {
        const uint8_t *nl = memchr(d + line, '\n', n - line);
        size_t end = nl ? (size_t)(nl - d) + 1 : n; /* the next line starts here */
        size_t body = (nl ? end - 1 : end) - line;
        if (body > 0 && d[line + body - 1] == '\r') body--;
        if (body == 1 && d[line] == '%') {
            st = add_doc(c, out, d + doc, line - doc);
            doc = end;
        }
        line = end;
    }
    if (st == NMF_OK && doc < n) st = add_doc(c, out, d + doc, n - doc);
    c->files++;
    return st;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static nmf_status read_one(nmf_corpus *c, bytes *out, const char *path) {
    uint8_t *data = NULL;
    size_t size = 0;
    nmf_status st = nmf_read_file(path, NMF_CORPUS_MAX_BYTES, &data, &size);
    if (st == NMF_OK) st = add_file(c, out, data, size);
    free(data);
    return st;
}

/* The files of directory dir whose names have no '.', sorted; *names malloc'd (and each name). */
static nmf_status list_dir(const char *dir, char ***names, size_t *count) {
    DIR *d = opendir(dir);
    if (!d) return nmf_error(NMF_ERR_IO, "corpus %s: cannot open the directory: %s", dir, strerror(errno));
    char **v = NULL;
    size_t n = 0, cap = 0;
    nmf_status st = NMF_OK;
    for (struct dirent *e; (e = readdir(d)) != NULL && st == NMF_OK;) {
        if (strchr(e->d_name, '.')) continue; /* ".", "..", hidden files, fortune's .dat / .u8 */
        char path[4096];
        struct stat sb;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path ||
            stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **w = realloc(v, cap * sizeof *w);
            if (!w) {
                st = nmf_error(NMF_ERR_NOMEM, "corpus file list");
                break;
            }
            v = w;
        }
        if (!(v[n] = strdup(path))) st = nmf_error(NMF_ERR_NOMEM, "corpus file list");
        else n++;
    }
    closedir(d);
    if (v) qsort(v, n, sizeof *v, by_name);
    *names = v;
    *count = n;
    return st;
}

nmf_status nmf_corpus_load(nmf_corpus *c, const char *path) {
    memset(c, 0, sizeof *c);
    if (!path) path = NMF_FORTUNES_DIR;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return nmf_error(NMF_ERR_NOT_FOUND, "corpus %s: %s%s", path, strerror(errno),
                         strcmp(path, NMF_FORTUNES_DIR) ? ""
                         : " (install the Debian package fortunes: scripts/setup.sh)");
    bytes out[NMF_TEXT_SPLITS] = {{0}};
    nmf_status st = NMF_OK;
    if (S_ISDIR(sb.st_mode)) {
        char **names = NULL;
        size_t n = 0;
        st = list_dir(path, &names, &n);
        for (size_t i = 0; i < n; i++) {
            if (st == NMF_OK) st = read_one(c, out, names[i]);
            free(names[i]);
        }
        free(names);
    } else {
        st = read_one(c, out, path);
    }
    if (st == NMF_OK && c->docs[NMF_TEXT_TRAIN] + c->docs[NMF_TEXT_VALID] + c->docs[NMF_TEXT_TEST] == 0)
        st = nmf_error(NMF_ERR_INVALID_ARG, "corpus %s: no documents (%zu files read)", path, c->files);
    for (int s = 0; s < NMF_TEXT_SPLITS; s++) {
        c->text[s] = out[s].p;
        c->len[s] = out[s].len;
    }
    if (st != NMF_OK) nmf_corpus_free(c);
    return st;
}

void nmf_corpus_free(nmf_corpus *c) {
    for (int s = 0; s < NMF_TEXT_SPLITS; s++) free(c->text[s]);
    memset(c, 0, sizeof *c);
}
