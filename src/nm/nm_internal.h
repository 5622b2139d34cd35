#ifndef NMF_NM_INTERNAL_H
#define NMF_NM_INTERNAL_H

#include "nmformer/nm.h"

void nm_group_topn(uint8_t *keep, const float *mag, int n, int m);
int nm_group_magnitudes(float *mag, const float *row, size_t cols, size_t g, int m);

#endif
