/* Helpers shared by the readers and writers: JSON naturals and shapes, value conversion, CRC. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "io/io_internal.h"

int nmf_io_fuzz_skip_crc = 0;

/* A JSON number that is a non-negative integer exactly representable in a double. */
int nmf_io_json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || d != (double)(uint64_t)d) return 0;
    *out = (uint64_t)d;
    return 1;
}

nmf_status nmf_io_parse_shape(const char *path, const char *name, const cJSON *shape, int *ndim,
                              int64_t *dims, size_t *numel) {
    if (!cJSON_IsArray(shape))
        return nmf_error(NMF_ERR_FORMAT, "%s: tensor '%s': shape is not an array", path, name);
    int n = cJSON_GetArraySize(shape);
    if (n > NMF_MAX_DIMS)
        return nmf_error(NMF_ERR_UNSUPPORTED, "%s: tensor '%s' has %d dimensions (at most %d)",
                         path, name, n, NMF_MAX_DIMS);
    size_t count = 1;
    int i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, shape) {
        uint64_t v;
        if (!nmf_io_json_uint(d, &v))
            return nmf_error(NMF_ERR_FORMAT, "%s: tensor '%s': shape entry is not a natural number",
                             path, name);
        if (v > ((uint64_t)1 << 40) || nmf_mul_overflow(count, (size_t)v, &count) ||
            count > ((size_t)1 << 40))
            return nmf_error(NMF_ERR_FORMAT, "%s: tensor '%s': shape too large", path, name);
        dims[i++] = (int64_t)v;
    }
    *ndim = n;
    *numel = count;
    return NMF_OK;
}

uint32_t nmf_crc32_update(uint32_t crc, const uint8_t *p, size_t n) {
    uLong c = crc;
    while (n > 0) { /* zlib takes uInt lengths */
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return (uint32_t)c;
}

void nmf_io_decode_values(float *out, const uint8_t *src, size_t count, nmf_dtype dtype) {
    switch (dtype) {
    case NMF_DTYPE_F32: memcpy(out, src, count * 4); break; /* little-endian host */
    case NMF_DTYPE_F16:
        for (size_t i = 0; i < count; i++)
            out[i] = nmf_f16_to_f32((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        break;
    case NMF_DTYPE_BF16:
        for (size_t i = 0; i < count; i++)
            out[i] = nmf_bf16_to_f32((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        break;
    default: break;
    }
}

void nmf_io_encode_values(uint8_t *out, const float *src, size_t count, nmf_dtype dtype) {
    switch (dtype) {
    case NMF_DTYPE_F32: memcpy(out, src, count * 4); break;
    case NMF_DTYPE_F16:
    case NMF_DTYPE_BF16:
        for (size_t i = 0; i < count; i++) {
            uint16_t h = dtype == NMF_DTYPE_F16 ? nmf_f32_to_f16(src[i]) : nmf_f32_to_bf16(src[i]);
            out[2 * i] = (uint8_t)(h & 0xff);
            out[2 * i + 1] = (uint8_t)(h >> 8);
        }
        break;
    default: break;
    }
}


cJSON *nmf_io_parse_json(const char *text, size_t len) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) return NULL;
    /* cJSON stops after the first value; anything but whitespace after it is junk */
    for (const char *p = end; p && p < text + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            return NULL;
        }
    return root;
}

char *nmf_io_path_join(const char *dir, const char *name) {
    if (!dir) dir = "";
    size_t a = strlen(dir), b = strlen(name);
    int slash = a > 0 && dir[a - 1] != '/';
    char *p = malloc(a + (size_t)slash + b + 1);
    if (!p) return NULL;
    memcpy(p, dir, a);
    if (slash) p[a] = '/';
    memcpy(p + a + slash, name, b + 1);
    return p;
}
