/* NumPy .npy files, C order: float32 tensors, and int64/int32 token ids.
 *
 * Layout: "\x93NUMPY", major, minor, header length (u16 LE for 1.0, u32 LE for 2.0/3.0), then an
 * ASCII (3.0: UTF-8) Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (..)},
 * padded with spaces and ending in '\n', then the raw data. We parse the dict with a small
 * tokenizer rather than substring search so that reordered keys and odd spacing are accepted and
 * anything else is rejected with a message naming the problem. */
#include "nmformer/io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPY_MAX_FILE ((size_t)1 << 36) /* 64 GiB: refuse anything larger outright */

void nmf_array_free(nmf_array *a) {
    if (!a) return;
    nmf_free(a->data);
    memset(a, 0, sizeof *a);
}

typedef struct {
    const char *p, *end;
    const char *path;
} npy_lexer;

static void skip_ws(npy_lexer *lx) {
    while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\n' || *lx->p == '\r'))
        lx->p++;
}

static int accept_char(npy_lexer *lx, char c) {
    skip_ws(lx);
    if (lx->p < lx->end && *lx->p == c) {
        lx->p++;
        return 1;
    }
    return 0;
}

/* A quoted Python string literal without escapes (all that numpy writes for these keys). */
static nmf_status parse_string(npy_lexer *lx, char *buf, size_t size) {
    skip_ws(lx);
    if (lx->p >= lx->end || (*lx->p != '\'' && *lx->p != '"'))
        return nmf_error(NMF_ERR_FORMAT, "%s: npy header: expected a quoted string", lx->path);
    char q = *lx->p++;
    size_t n = 0;
    while (lx->p < lx->end && *lx->p != q) {
        if (*lx->p == '\\' || n + 1 >= size)
            return nmf_error(NMF_ERR_FORMAT, "%s: npy header: unsupported string literal",
                             lx->path);
        buf[n++] = *lx->p++;
    }
    if (lx->p >= lx->end)
        return nmf_error(NMF_ERR_FORMAT, "%s: npy header: unterminated string", lx->path);
    lx->p++;
    buf[n] = '\0';
    return NMF_OK;
}

/* What the header says: shape and which of the accepted element types. */
typedef struct {
    int ndim;
    int64_t shape[NMF_MAX_DIMS];
    size_t numel;
    int kind;    /* index into npy_accept.descrs */
    size_t elem; /* bytes per element */
} npy_header;

/* The element types one reader takes ('<f4'; '<i8', '<i4'), and how to say so in an error. */
typedef struct {
    const char *const *descrs;
    int count;
    const char *need;
} npy_accept;

static nmf_status parse_shape(npy_lexer *lx, npy_header *out) {
    if (!accept_char(lx, '('))
        return nmf_error(NMF_ERR_FORMAT, "%s: npy header: shape is not a tuple", lx->path);
    int ndim = 0;
    size_t numel = 1;
    for (;;) {
        skip_ws(lx);
        if (accept_char(lx, ')')) break;
        /* a Python int literal: digits, no leading zero ("03" is a syntax error in Python) */
        if (lx->p >= lx->end || *lx->p < '0' || *lx->p > '9' ||
            (*lx->p == '0' && lx->p + 1 < lx->end && lx->p[1] >= '0' && lx->p[1] <= '9'))
            return nmf_error(NMF_ERR_FORMAT, "%s: npy header: bad shape entry", lx->path);
        uint64_t v = 0;
        while (lx->p < lx->end && *lx->p >= '0' && *lx->p <= '9') {
            v = v * 10 + (uint64_t)(*lx->p - '0');
            if (v > (uint64_t)INT64_MAX / 10)
                return nmf_error(NMF_ERR_FORMAT, "%s: npy header: shape dimension too large",
                                 lx->path);
            lx->p++;
        }
        if (lx->p < lx->end && *lx->p == 'L') lx->p++; /* Python 2 long suffix */
        if (ndim >= NMF_MAX_DIMS)
            return nmf_error(NMF_ERR_UNSUPPORTED, "%s: npy array has more than %d dimensions",
                             lx->path, NMF_MAX_DIMS);
        out->shape[ndim++] = (int64_t)v;
        if (nmf_mul_overflow(numel, (size_t)v, &numel))
            return nmf_error(NMF_ERR_FORMAT, "%s: npy shape overflows", lx->path);
        if (accept_char(lx, ',')) continue;
        if (accept_char(lx, ')')) break;
        return nmf_error(NMF_ERR_FORMAT, "%s: npy header: bad shape tuple", lx->path);
    }
    out->ndim = ndim;
    out->numel = numel;
    return NMF_OK;
}

/* Parses the header dict into *out; checks descr against `accept` and fortran_order. */
static nmf_status parse_header(const char *path, const char *h, size_t len,
                               const npy_accept *accept, npy_header *out) {
    npy_lexer lx = {h, h + len, path};
    int have_descr = 0, have_order = 0, have_shape = 0;
    if (!accept_char(&lx, '{'))
        return nmf_error(NMF_ERR_FORMAT, "%s: npy header is not a dict", path);
    for (;;) {
        if (accept_char(&lx, '}')) break;
        char key[32];
        nmf_status st = parse_string(&lx, key, sizeof key);
        if (st) return st;
        if (!accept_char(&lx, ':'))
            return nmf_error(NMF_ERR_FORMAT, "%s: npy header: expected ':' after '%s'", path, key);
        if (!strcmp(key, "descr")) {
            char descr[64];
            st = parse_string(&lx, descr, sizeof descr);
            if (st) return st;
            out->kind = -1;
            for (int i = 0; i < accept->count; i++)
                if (!strcmp(descr, accept->descrs[i])) out->kind = i;
            if (out->kind < 0)
                return nmf_error(NMF_ERR_UNSUPPORTED, "%s: npy dtype '%s' is not supported (need %s)",
                                 path, descr, accept->need);
            out->elem = (size_t)(descr[2] - '0'); /* accepted descrs are '<' + kind + 1 digit */
            have_descr++;
        } else if (!strcmp(key, "fortran_order")) {
            skip_ws(&lx);
            if ((size_t)(lx.end - lx.p) >= 5 && !memcmp(lx.p, "False", 5)) {
                lx.p += 5;
            } else if ((size_t)(lx.end - lx.p) >= 4 && !memcmp(lx.p, "True", 4)) {
                return nmf_error(NMF_ERR_UNSUPPORTED,
                                 "%s: npy array is in Fortran order (need C order)", path);
            } else {
                return nmf_error(NMF_ERR_FORMAT, "%s: npy header: bad fortran_order value", path);
            }
            have_order++;
        } else if (!strcmp(key, "shape")) {
            st = parse_shape(&lx, out);
            if (st) return st;
            have_shape++;
        } else {
            return nmf_error(NMF_ERR_FORMAT, "%s: npy header: unexpected key '%s'", path, key);
        }
        if (accept_char(&lx, ',')) continue;
        if (accept_char(&lx, '}')) break;
        return nmf_error(NMF_ERR_FORMAT, "%s: npy header: expected ',' or '}'", path);
    }
    if (have_descr != 1 || have_order != 1 || have_shape != 1)
        return nmf_error(NMF_ERR_FORMAT,
                         "%s: npy header needs each of 'descr', 'fortran_order', 'shape' once",
                         path);
    skip_ws(&lx);
    if (lx.p != lx.end)
        return nmf_error(NMF_ERR_FORMAT, "%s: npy header: junk after the dict", path);
    return NMF_OK;
}

/* Reads path, checks magic, version, header and that the data is exactly numel elements of the
 * accepted type; on success *buf (free()) holds the file and the data starts at *data_off. */
static nmf_status npy_load(const char *path, const npy_accept *accept, npy_header *hdr,
                           uint8_t **buf_out, size_t *data_off) {
    memset(hdr, 0, sizeof *hdr);
    *buf_out = NULL;
    uint8_t *buf;
    size_t size;
    nmf_status st = nmf_read_file(path, NPY_MAX_FILE, &buf, &size);
    if (st) return st;
    if (size < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) {
        free(buf);
        return nmf_error(NMF_ERR_FORMAT, "%s: not a .npy file (bad magic)", path);
    }
    int major = buf[6], minor = buf[7];
    size_t hlen, hstart;
    if (major == 1) {
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
        hstart = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12) {
            free(buf);
            return nmf_error(NMF_ERR_FORMAT, "%s: truncated .npy header", path);
        }
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 |
               (size_t)buf[11] << 24;
        hstart = 12;
    } else {
        free(buf);
        return nmf_error(NMF_ERR_UNSUPPORTED, "%s: .npy version %d.%d is not supported", path,
                         major, minor);
    }
    if (minor != 0) {
        free(buf);
        return nmf_error(NMF_ERR_UNSUPPORTED, "%s: .npy version %d.%d is not supported", path,
                         major, minor);
    }
    if (hlen > size - hstart) {
        free(buf);
        return nmf_error(NMF_ERR_FORMAT, "%s: .npy header length %zu exceeds the file (%zu bytes)",
                         path, hlen, size);
    }
    st = parse_header(path, (const char *)buf + hstart, hlen, accept, hdr);
    size_t data_bytes = 0;
    if (!st && nmf_mul_overflow(hdr->numel, hdr->elem, &data_bytes))
        st = nmf_error(NMF_ERR_FORMAT, "%s: .npy shape overflows", path);
    size_t have = size - hstart - hlen;
    if (!st && have != data_bytes)
        st = nmf_error(NMF_ERR_FORMAT, "%s: .npy data is %zu bytes, shape needs %zu (%s)", path,
                       have, data_bytes, have < data_bytes ? "truncated" : "trailing bytes");
    if (st) {
        free(buf);
        memset(hdr, 0, sizeof *hdr);
        return st;
    }
    *buf_out = buf;
    *data_off = hstart + hlen;
    return NMF_OK;
}

static const char *const f32_descrs[] = {"<f4"};
static const npy_accept f32_accept = {f32_descrs, 1, "'<f4', float32 little-endian"};

nmf_status nmf_npy_read(const char *path, nmf_array *out) {
    memset(out, 0, sizeof *out);
    npy_header h;
    uint8_t *buf;
    size_t off;
    nmf_status st = npy_load(path, &f32_accept, &h, &buf, &off);
    if (st) return st;
    out->data = nmf_alloc(h.numel, sizeof(float));
    if (!out->data) {
        free(buf);
        return nmf_error(NMF_ERR_NOMEM, "%s: cannot allocate %zu floats", path, h.numel);
    }
    if (h.numel) memcpy(out->data, buf + off, h.numel * sizeof(float)); /* '<f4' on a little-endian host */
    free(buf);
    out->ndim = h.ndim;
    memcpy(out->shape, h.shape, sizeof out->shape);
    out->numel = h.numel;
    return NMF_OK;
}

void nmf_id_array_free(nmf_id_array *a) {
    if (!a) return;
    nmf_free(a->data);
    memset(a, 0, sizeof *a);
}

/* NumPy's default integer and torch.long are '<i8'; int32 ids ('<i4') are widened. */
static const char *const id_descrs[] = {"<i8", "<i4"};
static const npy_accept id_accept = {id_descrs, 2, "'<i8' or '<i4', int64 or int32 little-endian"};

nmf_status nmf_npy_read_ids(const char *path, nmf_id_array *out) {
    memset(out, 0, sizeof *out);
    npy_header h;
    uint8_t *buf;
    size_t off;
    nmf_status st = npy_load(path, &id_accept, &h, &buf, &off);
    if (st) return st;
    out->data = nmf_alloc(h.numel, sizeof(int64_t));
    if (!out->data) {
        free(buf);
        return nmf_error(NMF_ERR_NOMEM, "%s: cannot allocate %zu ids", path, h.numel);
    }
    for (size_t i = 0; i < h.numel; i++) { /* little-endian host, as above */
        if (h.elem == 8) {
            memcpy(&out->data[i], buf + off + 8 * i, 8);
        } else {
            int32_t v;
            memcpy(&v, buf + off + 4 * i, 4);
            out->data[i] = v;
        }
    }
    free(buf);
    out->ndim = h.ndim;
    memcpy(out->shape, h.shape, sizeof out->shape);
    out->numel = h.numel;
    return NMF_OK;
}

/* Version 1.0 file of numel(shape) elements of `descr` (esize bytes each), header padded to 64. */
static nmf_status npy_write(const char *path, const char *descr, size_t esize, const void *data,
                            int ndim, const int64_t *shape) {
    if (ndim < 0 || ndim > NMF_MAX_DIMS)
        return nmf_error(NMF_ERR_INVALID_ARG, "%s: npy write: %d dimensions", path, ndim);
    size_t numel = 1;
    char dims[NMF_MAX_DIMS * 24 + 8];
    size_t dl = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || nmf_mul_overflow(numel, (size_t)shape[i], &numel))
            return nmf_error(NMF_ERR_INVALID_ARG, "%s: npy write: bad shape", path);
        dl += (size_t)snprintf(dims + dl, sizeof dims - dl, "%lld%s", (long long)shape[i],
                               ndim == 1 ? "," : (i + 1 < ndim ? ", " : ""));
    }
    dims[dl] = '\0';
    size_t bytes;
    if (nmf_mul_overflow(numel, esize, &bytes))
        return nmf_error(NMF_ERR_INVALID_ARG, "%s: npy write: shape overflows", path);
    char header[256];
    int n = snprintf(header + 10, sizeof header - 10,
                     "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, dims);
    size_t total = 10 + (size_t)n + 1; /* + '\n' */
    size_t padded = (total + 63) / 64 * 64;
    memcpy(header, "\x93NUMPY\x01\x00", 8);
    size_t hlen = padded - 10;
    header[8] = (char)(hlen & 0xff);
    header[9] = (char)(hlen >> 8);
    memset(header + 10 + n, ' ', padded - total);
    header[padded - 1] = '\n';
    nmf_atomic_file *f;
    nmf_status st = nmf_atomic_open(path, &f);
    if (st) return st;
    st = nmf_atomic_write(f, header, padded);
    if (!st && bytes) st = nmf_atomic_write(f, data, bytes);
    if (st) {
        nmf_atomic_abort(f);
        return st;
    }
    return nmf_atomic_commit(f);
}

nmf_status nmf_npy_write(const char *path, const float *data, int ndim, const int64_t *shape) {
    return npy_write(path, "<f4", sizeof(float), data, ndim, shape);
}

nmf_status nmf_npy_write_ids(const char *path, const int64_t *data, int ndim,
                             const int64_t *shape) {
    return npy_write(path, "<i8", sizeof(int64_t), data, ndim, shape);
}
