/* Constants and the tensor-descriptor type of the .nmf family container (docs/FORMAT.md).
 * Shared by nmf_write.c and nmf_read.c; not public API. */
#ifndef NMF_IO_NMF_FORMAT_H
#define NMF_IO_NMF_FORMAT_H

#include "nmformer/io.h"

#define NMF_FILE_MAGIC "\x89NMF\r\n\x1a\n" /* 8 bytes; PNG-style: catches text-mode mangling */
#define NMF_FILE_MAGIC_SIZE 8
/* Version 1: every N:M payload groups along axis 1 of its shape ([out, in]). Version 2 adds the
 * tensor key "in_axis": 0 for weights stored [in, out] (GPT-2's Conv1D), whose payload is the N:M
 * form of their (out, in) view: a version-1 reader would misread them, so a writer uses 2 only
 * for a file that holds one, and 1 otherwise (ViT, BERT, LLaMA files stay readable by old
 * readers). Readers accept both. */
#define NMF_FILE_VERSION 1u
#define NMF_FILE_VERSION_IN_AXIS 2u
#define NMF_FILE_VERSION_MAX 2u
#define NMF_FILE_HEADER_SIZE 32 /* magic, version, header_crc, json_size, data_size */
#define NMF_FILE_ALIGN 64       /* data section and every payload start on 64 bytes */
#define NMF_FILE_FORMAT_NAME "nmformer.family"
#define NMF_FILE_MAX_SIZE ((size_t)1 << 36) /* readers refuse files over 64 GiB */
#define NMF_FILE_MAX_JSON ((uint64_t)256 << 20)
#define NMF_FILE_MAX_NAME 255 /* tensor names, bytes */
/* readers refuse a tensor table that decodes to more than this many times the data section
 * (+256 MiB): shared payloads are decoded once per entry */
#define NMF_FILE_MAX_EXPANSION 256u

static inline uint64_t nmf_align64(uint64_t x) { return (x + (NMF_FILE_ALIGN - 1)) & ~(uint64_t)(NMF_FILE_ALIGN - 1); }

/* What a payload is: identical descriptors + identical bytes = one shared payload. */
typedef struct {
    nmf_dtype dtype;
    nmf_pattern pattern; /* {0,0}: dense */
    int transposed;      /* N:M of a weight stored [in, out]: the payload is its (out, in) view,
                            rows = shape[1], cols = shape[0] ("in_axis": 0, version 2) */
    int ndim;
    int64_t shape[NMF_MAX_DIMS];
    size_t numel;
} nmf_payload_desc;

/* Whether two payloads are described alike (dtype, pattern, orientation, shape). */
static inline int nmf_payload_desc_equal(const nmf_payload_desc *a, const nmf_payload_desc *b) {
    if (a->dtype != b->dtype || a->pattern.n != b->pattern.n || a->pattern.m != b->pattern.m ||
        a->transposed != b->transposed || a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

/* Bytes a payload of this descriptor occupies: dense numel*dtype_size; N:M (2-D [rows, cols],
 * or [cols, rows] when transposed) rows*groups*N*dtype_size values followed by
 * rows*code_row_bytes codes, groups = ceil(cols/M). Fails on overflow or a non-2-D N:M shape. */
nmf_status nmf_payload_size(const nmf_payload_desc *d, size_t *values_bytes, size_t *codes_bytes);

static inline void nmf_put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void nmf_put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t nmf_get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t nmf_get_u64(const uint8_t *p) {
    return (uint64_t)nmf_get_u32(p) | (uint64_t)nmf_get_u32(p + 4) << 32;
}

#endif
