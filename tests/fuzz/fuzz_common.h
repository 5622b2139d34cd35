/* Shared by the libFuzzer harnesses in tests/fuzz/: inputs handed to the readers as files (the
 * readers take paths), and what every harness does with a read that succeeded. */
#ifndef NMF_FUZZ_COMMON_H
#define NMF_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "nmformer/config.h"
#include "nmformer/tensor.h"

/* Makes data[0..size) the content of in-memory file `slot` (0 or 1) and returns a path the
 * readers can open ("/proc/self/fd/N"). */
const char *fuzz_file(int slot, const uint8_t *data, size_t size);

/* data as a NUL-terminated string (malloc'd, caller frees); NUL bytes inside stay. */
char *fuzz_text(const uint8_t *data, size_t size);

/* Exercises a tensor set read from a file: unpacks every tensor and touches every value; when
 * config is not NULL and the tensors fit it, builds the model and, when it is small, runs one
 * forward pass on a fixed image. Aborts (a finding) only on a broken library invariant. */
void fuzz_exercise(const nmf_model_config *config, const nmf_tensor_set *tensors);

/* Builds a model of config with random weights and runs one forward when it is small. */
void fuzz_forward_random(const nmf_model_config *config);

/* Quiets the library's threads for fuzzing speed (one thread, no OpenMP pool churn). */
void fuzz_init(void);

#endif
