/* nmformer core: status codes, error detail, aligned allocation, CPU features, threads. */
#ifndef NMFORMER_CORE_H
#define NMFORMER_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "nmformer/export.h" /* NMF_API; every public header reaches it through this one */

#ifdef __cplusplus
extern "C" {
#endif

/* Every library function that can fail returns an nmf_status. On failure a one-line detail
 * ("pos_embed: shape [1,50,64] expected [1,17,64]") is kept per thread: nmf_last_error(). */
typedef enum {
    NMF_OK = 0,
    NMF_ERR_INVALID_ARG,  /* caller passed something that cannot be right */
    NMF_ERR_NOMEM,        /* allocation failed or a size overflowed */
    NMF_ERR_IO,           /* open/read/write/fsync/rename failed */
    NMF_ERR_FORMAT,       /* a file is truncated, corrupt or malformed */
    NMF_ERR_UNSUPPORTED,  /* well formed, but a version/dtype/feature we do not handle */
    NMF_ERR_CHECKSUM,     /* CRC mismatch */
    NMF_ERR_SHAPE,        /* tensor shapes disagree */
    NMF_ERR_NOT_FOUND,    /* a named tensor/model/key is missing */
    NMF_ERR_NUMERIC,      /* NaN/Inf where a finite value is required */
    NMF_STATUS_COUNT
} nmf_status;

NMF_API const char *nmf_strerror(nmf_status status);

/* Records a detail message for this thread and returns `status` unchanged, so that
 * `return nmf_error(NMF_ERR_FORMAT, "%s: truncated", path);` reads naturally. */
NMF_API nmf_status nmf_error(nmf_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Puts context in front of this thread's current detail ("<context>: <detail>") and returns
 * `status`: how a caller says where a failure from a callee happened. */
NMF_API nmf_status nmf_error_context(nmf_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Detail of the last failure on this thread ("" if none). */
NMF_API const char *nmf_last_error(void);
NMF_API void nmf_clear_error(void);

/* 64-byte aligned allocation (zeroed). Returns NULL on failure or overflow of count*size. */
NMF_API void *nmf_alloc(size_t count, size_t size);
NMF_API void nmf_free(void *p);
/* a*b without overflow; returns 0 and sets *out on success, 1 on overflow. */
NMF_API int nmf_mul_overflow(size_t a, size_t b, size_t *out);
NMF_API int nmf_add_overflow(size_t a, size_t b, size_t *out);

/* Instruction sets we have kernels for. Chosen once from cpuid+xgetbv; NMF_ISA=scalar|avx2|avx512
 * forces one (forcing an ISA the CPU lacks falls back to the best available, with a warning). */
typedef enum { NMF_ISA_SCALAR = 0, NMF_ISA_AVX2, NMF_ISA_AVX512, NMF_ISA_COUNT } nmf_isa;
NMF_API nmf_isa nmf_cpu_best_isa(void);      /* what the hardware + OS support */
NMF_API nmf_isa nmf_active_isa(void);        /* what the kernels use (honours NMF_ISA, nmf_set_isa) */
NMF_API void nmf_set_isa(nmf_isa isa);       /* for tests; clamps to nmf_cpu_best_isa() */
NMF_API const char *nmf_isa_name(nmf_isa isa);

/* Threads for our own OpenMP loops; NMF_THREADS sets the default (else all cores).
 * The dense libraries run single-threaded under our threads (no oversubscription). */
NMF_API void nmf_set_threads(int n);
NMF_API int nmf_get_threads(void);

/* The environment the library reads (docs/CLI.md): NMF_THREADS (threads, 1..4096), NMF_ISA
 * (scalar|avx2|avx512), NMF_GEMM (openblas|onednn), NMF_SPMM (panel|tv), NMF_DATA_DIR (the
 * Fashion-MNIST folder). Unset or empty means the default. Where it reads a malformed value the
 * library falls back to the default (with a warning where there is one); this check instead
 * returns NMF_ERR_INVALID_ARG naming the first malformed variable. The CLI runs it first. */
NMF_API nmf_status nmf_env_check(void);

/* Progress of steps that can take seconds (loading a candidate or a safetensors file, writing a
 * family): after each tensor the library calls the handler set here; it runs on the calling
 * thread and must not call back into the library. NULL (the default): nothing is reported. The
 * library never prints: the CLI prints these on stderr (silenced by --quiet). */
typedef struct {
    const char *step;     /* "load", "read", "write" */
    const char *what;     /* the file */
    const char *item;     /* the tensor just done; NULL when unnamed (a shared payload) */
    uint64_t done, total; /* bytes */
    double seconds;       /* since the step began */
} nmf_progress;
typedef void (*nmf_progress_fn)(const nmf_progress *p, void *user);
NMF_API void nmf_set_progress(nmf_progress_fn fn, void *user);

/* Monotonic wall clock in seconds. */
NMF_API double nmf_now(void);

#ifdef __cplusplus
}
#endif
#endif
