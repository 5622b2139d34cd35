/* Helpers shared by the file-format readers and writers in src/io/. Not public API. */
#ifndef NMF_IO_INTERNAL_H
#define NMF_IO_INTERNAL_H

#include <cjson/cJSON.h>
#include <sys/types.h>

#include "nmformer/io.h"

/* Metadata (string -> string) entries a reader accepts per model: the set is a plain list whose
 * duplicate check is linear, and real files hold a handful. */
#define NMF_IO_MAX_META 4096

/* 1 when v is a JSON number holding a natural number exactly (at most 2^53). */
int nmf_io_json_uint(const cJSON *v, uint64_t *out);
/* Parses a JSON array of natural numbers as a shape (at most NMF_MAX_DIMS entries, numel at most
 * 2^40 so that numel * 4 never overflows). Errors name the file and the tensor. */
nmf_status nmf_io_parse_shape(const char *path, const char *name, const cJSON *shape, int *ndim,
                              int64_t *dims, size_t *numel);
/* Little-endian stored values <-> f32. */
void nmf_io_decode_values(float *out, const uint8_t *src, size_t count, nmf_dtype dtype);
void nmf_io_encode_values(uint8_t *out, const float *src, size_t count, nmf_dtype dtype);

/* Test seam for the fuzzers (tests/fuzz/fuzz_nmf_nocrc.c): when non-zero the .nmf reader skips
 * its CRC comparisons so that mutations reach the structure behind the checksums. Never set by
 * the library or the CLI. */
extern int nmf_io_fuzz_skip_crc;

/* The readers with keep16: a dense BF16/F16 tensor keeps its stored values (nmf_tensor's data16,
 * data NULL) instead of being widened to f32; N:M payloads and F32 tensors are as without. What
 * nmf_load_model_keep16 reads with. */
nmf_status nmf_io_safetensors_read(const char *path, nmf_tensor_set *out, nmf_dtype **dtypes,
                                   int keep16);
nmf_status nmf_io_hf_weights_read(const char *dir, nmf_tensor_set *out, nmf_dtype **dtypes,
                                  int keep16);
/* how: NMF_IO_KEEP16 (1, the keep16 above) | NMF_IO_NM_HEADERS: an N:M tensor as its header only
 * (shape, pattern, stored dtype; nm->values NULL), for a caller that then reads each one when it
 * needs it (nmf_io_family_file_decode_named) and drops it, so that a model built from the
 * candidate never holds all its N:M tensors decoded at once (nmf_lm_load). */
#define NMF_IO_KEEP16 1
#define NMF_IO_NM_HEADERS 2
/* with NMF_IO_KEEP16: a dense BF16/F16 tensor as its header only (data and data16 NULL), for a
 * caller that uses it in place from the file (nmf_io_family_file_map16) or reads it when needed */
#define NMF_IO_RAW16_HEADERS 4
/* Whether path may be peeked (read ahead of the real load): a regular file or a folder, or a
 * path stat cannot see (the load reports it); never a FIFO or device, which would lose the bytes
 * the peek reads. */
int nmf_io_peekable(const char *path);
nmf_status nmf_io_family_file_load(const nmf_family_file *f, size_t i, nmf_tensor_set *out, int how);
/* Tensor `name` of model m, decoded (its payload's CRC checked) and added to out; the 16-bit
 * variant keeps a dense BF16/F16 tensor's stored values (keep16). */
nmf_status nmf_io_family_file_decode_named(const nmf_family_file *f, size_t m, const char *name,
                                           nmf_tensor_set *out);
nmf_status nmf_io_family_file_decode_named16(const nmf_family_file *f, size_t m, const char *name,
                                             nmf_tensor_set *out, int keep16);

/* The process umask, read without changing it (022 when /proc does not say). */
mode_t nmf_io_umask(void);

/* nmf_safetensors_write with the given __metadata__ entries instead of s's own. */
nmf_status nmf_io_safetensors_write_meta(const char *path, const nmf_tensor_set *s, nmf_dtype dtype,
                                         const nmf_meta *meta, size_t meta_count);

/* A safetensors file written one tensor at a time (src/io/safetensors_write.c), what
 * nmf_safetensors_write is made of. open writes the header of tensors [first, first + count) of
 * headers (their names and shapes only, every one stored as dtype, the metadata given) into a
 * temporary file next to path; add takes those tensors in order, each checked against its header (name,
 * shape) and stored dense (N:M unpacked, zeros where pruned; 16-bit or f32 values); commit, once
 * every one is added, fsyncs and renames the file to path. abort, or any failure of add or
 * commit, removes the temporary file (after a failed add the caller still aborts). headers must
 * outlive the writer. */
typedef struct nmf_io_st_writer nmf_io_st_writer;
nmf_status nmf_io_st_writer_open(const char *path, const nmf_tensor_set *headers, size_t first,
                                 size_t count, nmf_dtype dtype, const nmf_meta *meta,
                                 size_t meta_count, nmf_io_st_writer **out);
nmf_status nmf_io_st_writer_add(nmf_io_st_writer *w, const nmf_tensor *t);
nmf_status nmf_io_st_writer_commit(nmf_io_st_writer *w); /* frees w, whatever happens */
void nmf_io_st_writer_abort(nmf_io_st_writer *w);

/* A Hugging Face model folder written one tensor at a time (src/io/hf_write.c), what
 * nmf_hf_folder_write is made of: open checks c and headers as nmf_hf_folder_write does, stages
 * the folder, writes config.json, plans the shards from the headers (opt->max_shard_bytes) and
 * opens the first; add takes every tensor of headers in order (as nmf_io_st_writer_add), each
 * shard committed when its last tensor is in; commit writes the index (when sharded) and moves
 * the folder into place. Abort, or any failure of add or commit, leaves dir as it was and
 * nothing else behind (after a failed add the caller still aborts). headers must outlive w. */
typedef struct nmf_io_hf_writer nmf_io_hf_writer;
nmf_status nmf_io_hf_writer_open(const char *dir, const nmf_model_config *c, const nmf_tensor_set *headers,
                                 const nmf_hf_write_options *opt, nmf_io_hf_writer **out);
nmf_status nmf_io_hf_writer_add(nmf_io_hf_writer *w, const nmf_tensor *t);
nmf_status nmf_io_hf_writer_commit(nmf_io_hf_writer *w); /* frees w, whatever happens */
void nmf_io_hf_writer_abort(nmf_io_hf_writer *w);

/* Temporaries removed on a signal (src/io/temp_registry.c, nmf_cleanup_temps_on_signal). What
 * each kind is, and what the handler does with it: */
typedef enum {
    NMF_IO_TEMP_FILE,   /* an atomic output's temporary file: unlinked */
    NMF_IO_TEMP_ASIDE,  /* an old folder moved aside while the new one moves in: renamed back to
                         * `restore` if that place is free, else deleted as the write would have */
    NMF_IO_TEMP_FOLDER, /* a folder output's temporary folder: its files, then the folder */
} nmf_io_temp_kind;
/* Creates "<base>.XXXXXX<suffix>" that did not exist: a file (open O_RDWR, mode 0600, into *fd)
 * or a folder (mode 0700), registered before it is created; returns its name (malloc'd) or NULL
 * with errno set. *slot is the registration for nmf_io_temp_forget (0: none, the registry was
 * full: the temporary works, a signal just leaves it). restore (ASIDE) must outlive the slot. */
char *nmf_io_temp_create(const char *base, const char *suffix, nmf_io_temp_kind kind,
                         const char *restore, int *fd, int *slot);
/* The temporary is gone (renamed into place or removed): a signal no longer touches its name.
 * Before the name is freed. */
void nmf_io_temp_forget(int slot);

/* A folder written whole or not at all: its files go into a temporary folder next to it
 * ("<dir>.XXXXXX.tmp", same filesystem), which publish fsyncs and renames to dir. dir may be
 * absent or an empty folder; a non-empty one only with force, and only when it looks like a
 * model folder (holds config.json and no subfolder): publish then swaps the new folder in
 * (renameat2 RENAME_EXCHANGE, else two renames) and deletes the old files. A file, a symlink or
 * any other folder at dir is refused at stage time, before anything is written. */
typedef struct {
    char *dir; /* destination, trailing '/' removed */
    char *tmp; /* the temporary folder the files go into */
    int replace; /* dir exists and is not empty (force given) */
    int tmp_slot; /* tmp's registration (nmf_io_temp_create; 0: none) */
} nmf_io_staged_dir;
nmf_status nmf_io_dir_stage(const char *dir, int force, nmf_io_staged_dir *out);
/* tmp/name (malloc'd; NULL when out of memory). */
char *nmf_io_dir_file(const nmf_io_staged_dir *d, const char *name);
/* Moves the temporary folder to dir (see above) and frees d; on failure tmp is removed. */
nmf_status nmf_io_dir_publish(nmf_io_staged_dir *d);
/* Removes the temporary folder and what was written into it; frees d. */
void nmf_io_dir_discard(nmf_io_staged_dir *d);
/* Test seam (tests/io/test_hf_nm.c): when non-zero, publish replaces a folder as on a filesystem
 * without RENAME_EXCHANGE (aside, in, delete). Never set by the library or the CLI. */
extern int nmf_io_dir_no_exchange;

/* Positional access to an atomic output's temporary file (src/io/atomic.c): only a replaced
 * regular file has one (seekable); a device, FIFO or "-" is NMF_ERR_UNSUPPORTED. pwrite records
 * a failure as nmf_atomic_write does (commit then refuses to publish). */
int nmf_io_atomic_seekable(const nmf_atomic_file *f);
nmf_status nmf_io_atomic_pwrite(nmf_atomic_file *f, uint64_t offset, const void *data, size_t size);
nmf_status nmf_io_atomic_pread(nmf_atomic_file *f, uint64_t offset, void *data, size_t size);

/* Parses exactly one JSON value from text[0..len), allowing only whitespace after it. */
cJSON *nmf_io_parse_json(const char *text, size_t len);

/* dir + "/" + name, malloc'd (no doubled '/'; an empty dir gives name). NULL when out of memory. */
char *nmf_io_path_join(const char *dir, const char *name);

/* A model file opened for reading in windows (src/io/mapped.c): a regular file is mapped one
 * byte range at a time; "-", a FIFO or a character device is read whole into mem. */
typedef struct {
    const char *path; /* for messages; not owned */
    int fd;           /* the regular file; -1 when the bytes are in mem */
    uint8_t *mem;
    uint64_t size;    /* bytes at open */
} nmf_io_source;
typedef struct {
    const uint8_t *p; /* the requested bytes */
    void *map;        /* the mapping around them (NULL: p points into the source's mem) */
    size_t map_len;
} nmf_io_window;
/* Opens path (files over max_size refused, as nmf_read_file does); nothing is read yet for a
 * regular file. Close with nmf_io_source_close even after a failure. */
nmf_status nmf_io_source_open(const char *path, size_t max_size, nmf_io_source *out);
void nmf_io_source_close(nmf_io_source *s);
/* Bytes [offset, offset + len) of s, read-only. Outside s->size is NMF_ERR_FORMAT; a file that
 * shrank below the range since it was opened is NMF_ERR_IO (never a SIGBUS on touch). */
nmf_status nmf_io_window_map(const nmf_io_source *s, uint64_t offset, uint64_t len, nmf_io_window *w);
void nmf_io_window_unmap(nmf_io_window *w);
/* Bytes [offset, offset + len) of s copied into dst with pread (no mapping: a copy that the
 * caller keeps costs its own pages only, not the page cache's mapped as well); the same range
 * checks and errors as nmf_io_window_map. */
nmf_status nmf_io_read_at(const nmf_io_source *s, uint64_t offset, uint64_t len, void *dst);
/* Tensor `name` of model m used in place: when it is a dense BF16/F16 tensor, stored raw and
 * little-endian like this machine, in a regular file, at a 64-byte aligned address, its padding
 * and CRC are checked now (each page read once, from the page cache: file-backed memory, not
 * anonymous) and w maps it (w->p: its numel stored values). The mapping is the caller's to
 * unmap (nmf_io_window_unmap) and stays valid after the family file is closed; a file truncated
 * or rewritten while it is mapped is outside what can be checked (a later touch may fault).
 * NMF_ERR_UNSUPPORTED, with no error text, when the layout does not allow it: read a copy. */
nmf_status nmf_io_family_file_map16(const nmf_family_file *f, size_t m, const char *name,
                                    nmf_io_window *w);

/* A safetensors file opened for reading tensor by tensor (src/io/safetensors.c): open parses
 * and checks the whole header (entries, metadata, the exact tiling of the data) and reads no
 * tensor; decode maps one tensor's bytes and converts them to f32. */
typedef struct {
    const char *name; /* into the parsed header */
    nmf_dtype dtype;
    int ndim;
    int64_t shape[NMF_MAX_DIMS];
    size_t numel, bytes;
    uint64_t begin; /* relative to the data buffer */
} nmf_io_st_tensor;
typedef struct {
    const char *path; /* not owned */
    nmf_io_source src;
    nmf_io_st_tensor *items; /* header order */
    size_t count;
    uint64_t data_at, data_size;
    nmf_tensor_set meta; /* __metadata__ (no tensors) */
    nmf_tensor_set names_; /* internal: the names, for the duplicate check */
    cJSON *root_;
} nmf_io_st_file;
nmf_status nmf_io_st_open(const char *path, nmf_io_st_file *f); /* closes f itself on failure */
nmf_status nmf_io_st_decode(const nmf_io_st_file *f, size_t i, float *dst); /* dst[numel] */
/* a BF16/F16 tensor's stored values as they are: dst[numel] */
nmf_status nmf_io_st_read16(const nmf_io_st_file *f, size_t i, uint16_t *dst);
/* Every tensor of f, in header order, appended to out (16-bit ones kept as stored with keep16), its
 * stored dtype in dtypes[0 .. f->count); with progress. */
nmf_status nmf_io_st_read_all(const nmf_io_st_file *f, nmf_tensor_set *out, nmf_dtype *dtypes,
                              int keep16);
void nmf_io_st_close(nmf_io_st_file *f);

/* The weight files of a Hugging Face model folder opened tensor by tensor (src/io/hf_weights.c):
 * model.safetensors, or the shards of its index in file-name order, every header checked against
 * the index; the tensors are shards[s].items[i], shard by shard. */
typedef struct {
    nmf_io_st_file *shards;
    char **paths; /* shards[s].path */
    size_t count, npaths; /* shards opened, paths allocated */
    nmf_tensor_set meta; /* the shards' __metadata__ merged (no tensors) */
} nmf_io_hf_weights;
nmf_status nmf_io_hf_weights_open(const char *dir, nmf_io_hf_weights *w); /* closes w on failure */
/* One safetensors file opened the same way (count 1). */
nmf_status nmf_io_hf_weights_open_file(const char *path, nmf_io_hf_weights *w);
void nmf_io_hf_weights_close(nmf_io_hf_weights *w);

/* One candidate of an opened .nmf family tensor by tensor (src/io/nmf_read.c): headers gives
 * model m's tensors without values (nmf_tensors_add_header: shapes, N:M headers, stored dtypes)
 * and its metadata, in file order; decode checks (padding, CRC, codes) and adds tensor j of
 * model m to out, as nmf_family_file_load would; bytes is its payload size. */
nmf_status nmf_io_family_file_headers(const nmf_family_file *f, size_t m, nmf_tensor_set *out);
nmf_status nmf_io_family_file_decode(const nmf_family_file *f, size_t m, size_t j, nmf_tensor_set *out);
uint64_t nmf_io_family_file_bytes(const nmf_family_file *f, size_t m, size_t j);
/* nmf_family_read_layout with every payload checked (padding, CRC) but none decoded: the
 * candidates' tensors are headers (nmf_tensors_add_header). What `info` needs of a family of
 * any size. */
nmf_status nmf_io_family_read_headers(const char *path, nmf_family *out, nmf_family_layout *layout);
/* The candidate a model load means by name (NULL: the only one), or an error listing them. */
nmf_status nmf_io_family_file_pick(const nmf_family_file *f, const char *path, const char *name,
                                   size_t *pick);

/* The steps of a model load (nmf_load_model_with, src/io/nmf_family.c) that a streamed read
 * shares: a safetensors model's config from its metadata (else the fallback or the defaults when
 * the caller gives values; *from_file says which), then the overrides, validation, the tensor
 * check against the config and the nmformer.config metadata. tensors may be headers only. */
nmf_status nmf_io_safetensors_config(const char *path, const nmf_tensor_set *meta,
                                     const nmf_model_config *fallback_config,
                                     const nmf_config_overrides *overrides, nmf_model_config *config,
                                     int *from_file);
nmf_status nmf_io_model_config_finish(const char *path, int from_file,
                                      const nmf_config_overrides *overrides, nmf_model_config *config,
                                      nmf_tensor_set *tensors);

#endif
