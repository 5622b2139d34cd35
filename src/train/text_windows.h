/* Windows of a corpus split that are not drawn at random: the evaluation windows of the trainer
 * (lm_data.c) and the byte-level default calibration set (prune/calib_default.c) are the same
 * evenly spread T-byte windows, so that one definition says which text each of them reads. */
#ifndef NMF_TRAIN_TEXT_WINDOWS_H
#define NMF_TRAIN_TEXT_WINDOWS_H

#include <stddef.h>

/* Windows of a split of len bytes: all consecutive T-byte windows that have a next byte after
 * them ((len - 1) / T), or limit (> 0) of them when that is fewer. */
size_t nmf_lm_eval_windows(size_t len, int T, size_t limit);
/* The first byte of window w of n (n <= nmf_lm_eval_windows(len, T, 0)): the n windows are
 * spread evenly over the split, each starting at a multiple of T; w + T + 1 <= len. */
size_t nmf_lm_window_start(size_t len, int T, size_t n, size_t w);

#endif
