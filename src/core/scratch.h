/* Private: per-thread scratch for the temporary buffers of one product (a transposed x, partial
 * sums, quantised activations), so that running a planned layer allocates nothing per call.
 *
 * Each thread owns one 64-byte aligned buffer that grows to the largest request it has seen and
 * is freed when the thread exits. One user at a time: a kernel entry point takes it, uses it
 * (sharing it with the OpenMP threads of its own parallel region, if it likes) and gives it
 * back before returning. A nested take while the buffer is held gets a buffer of its own
 * (allocated, freed by the give), so a caller that forgets the rule is slower, never wrong. */
#ifndef NMF_CORE_SCRATCH_H
#define NMF_CORE_SCRATCH_H

#include <stddef.h>

/* `bytes` bytes, 64-byte aligned, contents undefined; NULL if they cannot be had. */
void *nmf_scratch_take(size_t bytes);
/* Gives back what nmf_scratch_take returned (NULL: nothing). */
void nmf_scratch_give(void *p);

#endif
