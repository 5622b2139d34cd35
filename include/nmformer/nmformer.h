/* nmformer: the whole public API in one include, `#include <nmformer/nmformer.h>`.
 * Each header below also stands alone; this one only gathers them. */
#ifndef NMFORMER_NMFORMER_H
#define NMFORMER_NMFORMER_H

#include "nmformer/version.h"
#include "nmformer/core.h"
#include "nmformer/nm.h"
#include "nmformer/tensor.h"
#include "nmformer/config.h"
#include "nmformer/kernels.h"
#include "nmformer/ops.h"
#include "nmformer/io.h"
#include "nmformer/data.h"
#include "nmformer/desc.h"
#include "nmformer/model.h"
#include "nmformer/lm.h"
#include "nmformer/prune.h"
#include "nmformer/train.h"
#include "nmformer/dist.h"
#include "nmformer/sta.h"
#include "nmformer/report.h"

#endif
