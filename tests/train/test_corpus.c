/* Text corpora (src/train/corpus.c): documents split at "%" lines (CRLF too, a last document
 * without its separator too), blank documents dropped, every document whole in the split its
 * hash picks, the same split whatever file or order it comes in, files with a '.' skipped, and
 * clear errors for a missing path or a corpus without documents. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nmformer/data.h"
#include "test.h"

static char dir[64];

static void write_file(const char *name, const char *text) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* occurrences of "doc%\n" as a whole document of split s's text (at its start or after "%\n") */
static int count_doc(const nmf_corpus *c, nmf_text_split s, const char *doc) {
    char want[256];
    snprintf(want, sizeof want, "%s%%\n", doc);
    const size_t n = strlen(want);
    int k = 0;
    for (size_t i = 0; i + n <= c->len[s]; i++)
        if ((i == 0 || (i >= 2 && !memcmp(c->text[s] + i - 2, "%\n", 2))) &&
            !memcmp(c->text[s] + i, want, n))
            k++;
    return k;
}

/* documents d[0..n) are each in exactly the split their hash gives, `copies` times */
static void check_docs(const nmf_corpus *c, const char *const *d, int n, int copies) {
    for (int i = 0; i < n; i++) {
        nmf_text_split want = nmf_corpus_doc_split((const uint8_t *)d[i], strlen(d[i]));
        for (int s = 0; s < NMF_TEXT_SPLITS; s++)
            CHECK_MSG(count_doc(c, (nmf_text_split)s, d[i]) == (s == (int)want ? copies : 0),
                      "document %d in split %s: %d times", i, nmf_text_split_name((nmf_text_split)s),
                      count_doc(c, (nmf_text_split)s, d[i]));
    }
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/nmf_test_corpus.XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    /* 60 short documents: with 3 splits of 5/5/90% some land in each (checked below) */
    static char docs[60][48];
    const char *d[60];
    char a[4096] = "", b[4096] = "";
    for (int i = 0; i < 60; i++) {
        snprintf(docs[i], sizeof docs[i], "Document %d says %s.\nSecond line.\n", i,
                 i % 2 ? "yes" : "no");
        d[i] = docs[i];
        char *dst = i < 30 ? a : b;
        strcat(dst, docs[i]);
        strcat(dst, i % 3 ? "%\n" : "%\r\n"); /* CRLF separators too */
    }
    strcat(a, "%\n   \n%\n"); /* a blank document: dropped */
    b[strlen(b) - 2] = '\0';   /* the last document without its separator */
    write_file("a", a);
    write_file("b", b);
    write_file("a.dat", "not read\n%\n");

    nmf_corpus c;
    CHECK_OK(nmf_corpus_load(&c, dir));
    CHECK(c.files == 2);
    CHECK(c.docs[NMF_TEXT_TRAIN] + c.docs[NMF_TEXT_VALID] + c.docs[NMF_TEXT_TEST] == 60);
    int seen[NMF_TEXT_SPLITS] = {0};
    for (int i = 0; i < 60; i++) seen[nmf_corpus_doc_split((const uint8_t *)d[i], strlen(d[i]))]++;
    for (int s = 0; s < NMF_TEXT_SPLITS; s++) CHECK(c.docs[s] == (size_t)seen[s]);
    CHECK(seen[NMF_TEXT_TRAIN] > 40 && seen[NMF_TEXT_VALID] + seen[NMF_TEXT_TEST] > 0);
    check_docs(&c, d, 60, 1);
    /* nothing else in the text: the documents and their separators */
    size_t bytes = 0;
    for (int i = 0; i < 60; i++) bytes += strlen(d[i]) + 2;
    CHECK(c.len[0] + c.len[1] + c.len[2] == bytes);
    CHECK(memchr(c.text[NMF_TEXT_TRAIN], '\r', c.len[NMF_TEXT_TRAIN]) == NULL);

    /* the same documents in other files, another order, duplicated: the same splits */
    nmf_corpus c2;
    char one[128];
    snprintf(one, sizeof one, "%s/b", dir);
    CHECK_OK(nmf_corpus_load(&c2, one)); /* one file */
    CHECK(c2.files == 1 && c2.docs[0] + c2.docs[1] + c2.docs[2] == 30);
    check_docs(&c2, d + 30, 30, 1);
    nmf_corpus_free(&c2);
    write_file("0first", b); /* read before a and b: b's documents twice */
    CHECK_OK(nmf_corpus_load(&c2, dir));
    check_docs(&c2, d, 30, 1);
    check_docs(&c2, d + 30, 30, 2);
    nmf_corpus_free(&c2);

    /* deterministic: loading again gives the same bytes */
    CHECK_OK(nmf_corpus_load(&c2, dir));
    nmf_corpus c3;
    CHECK_OK(nmf_corpus_load(&c3, dir));
    for (int s = 0; s < NMF_TEXT_SPLITS; s++)
        CHECK(c2.len[s] == c3.len[s] && !memcmp(c2.text[s], c3.text[s], c2.len[s]));
    nmf_corpus_free(&c2);
    nmf_corpus_free(&c3);
    nmf_corpus_free(&c);

    /* errors */
    char bad[128];
    snprintf(bad, sizeof bad, "%s/missing", dir);
    CHECK_STATUS(nmf_corpus_load(&c, bad), NMF_ERR_NOT_FOUND);
    CHECK(strstr(nmf_last_error(), "missing") != NULL);
    write_file("empty.txt", "%\n  \n%\n");
    snprintf(bad, sizeof bad, "%s/empty.txt", dir);
    CHECK_STATUS(nmf_corpus_load(&c, bad), NMF_ERR_INVALID_ARG);
    CHECK(c.text[0] == NULL && c.len[0] == 0);

    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return test_finish("test_corpus");
}
