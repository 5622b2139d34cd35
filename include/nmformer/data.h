/* Datasets: Fashion-MNIST from the IDX files of the Debian package dataset-fashion-mnist.
 *
 * The files are read with zlib (gzip or plain IDX both work: gzread passes plain files through)
 * and treated as hostile: magic, dimensions, counts, truncation, trailing bytes and label range
 * are all checked before anything is used. */
#ifndef NMFORMER_DATA_H
#define NMFORMER_DATA_H

#include "nmformer/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where the Debian package puts the files. NMF_DATA_DIR in the environment overrides it when
 * nmf_dataset_load is given dir == NULL. */
#define NMF_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
#define NMF_FASHION_MNIST_CLASSES 10
#define NMF_FASHION_MNIST_MEAN 0.2860f /* of pixel/255 over the 60k training images */
#define NMF_FASHION_MNIST_STD 0.3530f

typedef enum { NMF_SPLIT_TRAIN = 0, NMF_SPLIT_TEST, NMF_SPLIT_COUNT } nmf_split;
NMF_API const char *nmf_split_name(nmf_split s); /* "train", "test" */

/* Class names of Fashion-MNIST ("T-shirt/top", ..., "Ankle boot"). */
NMF_API const char *nmf_fashion_mnist_class_name(int label);

typedef struct {
    size_t n;         /* number of examples */
    int rows, cols;   /* image size (28 x 28 for Fashion-MNIST) */
    int num_classes;  /* labels are in [0, num_classes) */
    uint8_t *images;  /* [n][rows][cols], row-major, 0..255 */
    uint8_t *labels;  /* [n] */
} nmf_dataset;

/* Upper bounds a file may claim before we refuse it (hostile headers must not make us allocate
 * gigabytes): */
#define NMF_IDX_MAX_ITEMS 10000000u
#define NMF_IDX_MAX_SIDE 4096u

/* Loads the split from dir (NULL: $NMF_DATA_DIR, else NMF_FASHION_MNIST_DIR), i.e.
 *   train-images-idx3-ubyte.gz + train-labels-idx1-ubyte.gz   (60000 examples)
 *   t10k-images-idx3-ubyte.gz  + t10k-labels-idx1-ubyte.gz    (10000 examples)
 * falling back to the same names without .gz. Labels must be < NMF_FASHION_MNIST_CLASSES.
 * NMF_ERR_NOT_FOUND when the files are absent (the detail names the path and the package);
 * NMF_ERR_INVALID_ARG when dir is NULL and NMF_DATA_DIR is set but is not a folder. */
NMF_API nmf_status nmf_dataset_load(nmf_dataset *ds, const char *dir, nmf_split split);
/* Loads an explicit image/label IDX pair; labels must be < num_classes (1..256). */
NMF_API nmf_status nmf_dataset_load_files(nmf_dataset *ds, const char *images_path,
                                  const char *labels_path, int num_classes);
NMF_API void nmf_dataset_free(nmf_dataset *ds);

/* Converts examples idx[0..count) (or 0..count when idx is NULL) to normalised float NCHW:
 *   out[b][0][y][x] = (images[idx[b]][y][x] / 255 - mean) / std          // (B,1,rows,cols)
 * labels_out (may be NULL) receives labels[idx[b]] as int. Indices must be < ds->n. */
NMF_API nmf_status nmf_dataset_batch(float *out, int *labels_out, const nmf_dataset *ds,
                             const size_t *idx, size_t count, float mean, float std);

/* ---- text corpora (byte-level language models) --------------------------------------------
 * A corpus is a directory of text files of documents separated by lines holding only "%" (the
 * fortune format: the Debian package `fortunes` installs /usr/share/games/fortunes), or one such
 * file. In a directory, every regular file whose name has no '.' is read (fortune's .dat / .u8
 * indexes are skipped), in name order. Every document goes whole to one split, chosen by a hash
 * of its bytes (nmf_corpus_doc_split): the split is by document, deterministic, and the same
 * text always lands in the same split whatever file or position it comes in. A split's text is
 * its documents in reading order, each followed by "%\n" (so a model learns where one ends). */
#define NMF_FORTUNES_DIR "/usr/share/games/fortunes"
#define NMF_CORPUS_MAX_BYTES ((size_t)1 << 30) /* in all; larger corpora are refused */

typedef enum { NMF_TEXT_TRAIN = 0, NMF_TEXT_VALID, NMF_TEXT_TEST, NMF_TEXT_SPLITS } nmf_text_split;
NMF_API const char *nmf_text_split_name(nmf_text_split s); /* "train", "valid", "test" */

typedef struct {
    uint8_t *text[NMF_TEXT_SPLITS]; /* each split's documents, each followed by "%\n" */
    size_t len[NMF_TEXT_SPLITS];    /* bytes */
    size_t docs[NMF_TEXT_SPLITS];   /* documents */
    size_t files;                   /* files read */
} nmf_corpus;

/* The split of a document: FNV-1a 64 of its bytes, mod 20: 0 test, 1 valid (5% each), else train. */
NMF_API nmf_text_split nmf_corpus_doc_split(const uint8_t *doc, size_t n);
/* Reads the corpus at path (NULL: NMF_FORTUNES_DIR). NMF_ERR_NOT_FOUND naming the path (and the
 * package) when it does not exist; NMF_ERR_INVALID_ARG when it holds no document. */
NMF_API nmf_status nmf_corpus_load(nmf_corpus *c, const char *path);
NMF_API void nmf_corpus_free(nmf_corpus *c);

#ifdef __cplusplus
}
#endif
#endif
