/* Helpers shared by the file-format readers and writers in src/io/. Not public API. */
#ifndef NMF_IO_INTERNAL_H
#define NMF_IO_INTERNAL_H

#include <cjson/cJSON.h>

#include "nmformer/io.h"

/* Metadata (string -> string) entries a reader accepts per model: the set is a plain list whose
 * duplicate check is linear, and real files hold a handful. */
#define NMF_IO_MAX_META 4096

/* 1 when v is a JSON number holding a natural number exactly (at most 2^53). */
int nmf_io_json_uint(const cJSON *v, uint64_t *out);
/* Parses a JSON array of natural numbers as a shape (at most NMF_MAX_DIMS entries, numel at most
 * 2^40 so that numel * 4 never overflows). Errors name the file and the tensor. */
nmf_status nmf_io_parse_shape(const char *path, const char *name, const cJSON *shape, int *ndim,
                              int64_t *dims, size_t *numel);
/* Little-endian stored values <-> f32. */
void nmf_io_decode_values(float *out, const uint8_t *src, size_t count, nmf_dtype dtype);
void nmf_io_encode_values(uint8_t *out, const float *src, size_t count, nmf_dtype dtype);

/* Test seam for the fuzzers (tests/fuzz/fuzz_nmf_nocrc.c): when non-zero the .nmf reader skips
 * its CRC comparisons so that mutations reach the structure behind the checksums. Never set by
 * the library or the CLI. */
extern int nmf_io_fuzz_skip_crc;

/* Parses exactly one JSON value from text[0..len), allowing only whitespace after it. */
cJSON *nmf_io_parse_json(const char *text, size_t len);

/* dir + "/" + name, malloc'd (no doubled '/'; an empty dir gives name). NULL when out of memory. */
char *nmf_io_path_join(const char *dir, const char *name);

#endif
