/* Reads an .nmf family and exercises every candidate: tensors unpacked, model built and run when
 * small; the layout is checked against the file it describes. The same file is then opened the
 * mapped way (nmf_family_open) and each candidate loaded on its own: a file the whole-family
 * reader accepts must load candidate by candidate too, and equally; any file, never a crash. */
#include "tensor_compare.h"
#include "fuzz_nmf_family.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "nmformer/io.h"

/* 1 when a and b hold the same tensors (names, shapes, dense values bit for bit). */
/* eager: the whole family as nmf_family_read_layout gave it, or NULL when it refused the file. */
static void load_each(const char *path, const nmf_family *eager) {
    nmf_family_file *ff;
    if (nmf_family_open(path, &ff) != NMF_OK) {
        if (eager) abort(); /* the table the whole-family reader accepted */
        return;
    }
    if (eager && nmf_family_file_count(ff) != eager->count) abort();
    for (size_t i = 0; i < nmf_family_file_count(ff); i++) {
        nmf_tensor_set s;
        if (nmf_family_file_load(ff, i, &s) != NMF_OK) {
            if (eager) abort();
            continue;
        }
        if (eager && !nmf_test_same_tensors(&s, &eager->models[i].tensors, 0)) abort();
        nmf_tensors_free(&s);
    }
    nmf_family_close(ff);
}

void fuzz_nmf_family(const uint8_t *data, size_t size) {
    nmf_family f;
    nmf_family_layout layout;
    const char *path = fuzz_file(0, data, size);
    if (nmf_family_read_layout(path, &f, &layout) != NMF_OK) {
        load_each(path, NULL);
        return;
    }
    /* a layout that points outside the file it came from is a reader bug */
    if (layout.file_size != size || layout.data_offset + layout.data_size != size) abort();
    for (size_t i = 0; i < layout.count; i++)
        if (layout.items[i].offset + layout.items[i].size > layout.data_size) abort();
    for (size_t i = 0; i < f.count; i++) fuzz_exercise(&f.config, &f.models[i].tensors);
    load_each(path, &f);
    nmf_family_layout_free(&layout);
    nmf_family_free(&f);
}
