/* The one im2col of the ViT patch embedding (a stride-P, kernel-P convolution), shared by the
 * inference forward, training and the STA's f32 and fixed-point paths. */
#ifndef NMF_MODEL_PATCHIFY_H
#define NMF_MODEL_PATCHIFY_H

#include <stddef.h>

/* out (B*G*G, C*P*P) from images (B, C, S, S), G = S / P: row (b, gy, gx) is image b's patch at
 * grid position (gy, gx), flattened as (c, ky, kx), the order of the conv weight (D, C, P, P);
 * rows run over the grid row-major (timm: flatten(2)). Elements are elem_size bytes (float for
 * the f32 paths, int16 for fixed point): a patch row is copied, never converted. */
void nmf_patchify(void *out, const void *images, size_t elem_size, size_t B, int C, int S, int P);

#endif
