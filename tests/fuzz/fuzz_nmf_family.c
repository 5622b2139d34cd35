/* Reads an .nmf family and exercises every candidate: tensors unpacked, model built and run when
 * small; the layout is checked against the file it describes. */
#include "fuzz_nmf_family.h"

#include <stdlib.h>

#include "fuzz_common.h"
#include "nmformer/io.h"

void fuzz_nmf_family(const uint8_t *data, size_t size) {
    nmf_family f;
    nmf_family_layout layout;
    if (nmf_family_read_layout(fuzz_file(0, data, size), &f, &layout) != NMF_OK) return;
    /* a layout that points outside the file it came from is a reader bug */
    if (layout.file_size != size || layout.data_offset + layout.data_size != size) abort();
    for (size_t i = 0; i < layout.count; i++)
        if (layout.items[i].offset + layout.items[i].size > layout.data_size) abort();
    for (size_t i = 0; i < f.count; i++) fuzz_exercise(&f.config, &f.models[i].tensors);
    nmf_family_layout_free(&layout);
    nmf_family_free(&f);
}
