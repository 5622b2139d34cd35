/* File formats: .nmf family container, safetensors, .npy, and atomic writes.
 * Every reader treats its input as hostile: sizes, offsets, counts and overflow are checked
 * before use, and failures return a status with a detail naming the problem. */
#ifndef NMFORMER_IO_H
#define NMFORMER_IO_H

#include "nmformer/config.h"
#include "nmformer/kernels.h" /* nmf_precision */
#include "nmformer/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- atomic writes: temp file in the same directory, fsync, rename, fsync dir ----
 * Regular files and new paths are replaced atomically (mode kept; a read-only file is refused);
 * a symlink is written through to its target, atomically; devices, FIFOs and "-" (stdout) are
 * written directly; a directory is an error. */
typedef struct nmf_atomic_file nmf_atomic_file;
NMF_API nmf_status nmf_atomic_open(const char *path, nmf_atomic_file **out);
NMF_API nmf_status nmf_atomic_write(nmf_atomic_file *f, const void *data, size_t size);
/* fsync + rename over path; frees f. */
NMF_API nmf_status nmf_atomic_commit(nmf_atomic_file *f);
/* removes the temp file; frees f. */
NMF_API void nmf_atomic_abort(nmf_atomic_file *f);
/* For programs (the CLI calls it first thing; the library never installs handlers itself):
 * installs SIGINT, SIGTERM and SIGHUP handlers that remove every temporary output in progress
 * (the temp files above, and the temporary folders of folder outputs with what was written in
 * them; an old folder being replaced goes back to its place) and then end the process as the
 * signal would have (exit status 128 + signal). A signal that is ignored (nohup, a background
 * job) or already has a handler is left as it is. SIGKILL cannot be caught: it may leave a
 * "<target>.XXXXXX.tmp" file or folder beside the output (never a torn output). */
NMF_API nmf_status nmf_cleanup_temps_on_signal(void);
/* zlib CRC-32 of p[0..n) continuing from crc (0 to start); handles n beyond zlib's uInt. */
NMF_API uint32_t nmf_crc32_update(uint32_t crc, const uint8_t *p, size_t n);
/* Whole file into memory (malloc'd, NUL-terminated); refuses files over max_size. "-" reads
 * standard input; FIFOs and character devices are read as streams (never more than max_size). */
NMF_API nmf_status nmf_read_file(const char *path, size_t max_size, uint8_t **data, size_t *size);

/* ---- .npy (float32, C order; versions 1.0, 2.0 read; 1.0 written) ---- */
typedef struct {
    int ndim;
    int64_t shape[NMF_MAX_DIMS];
    size_t numel;
    float *data; /* malloc'd via nmf_alloc */
} nmf_array;
NMF_API nmf_status nmf_npy_read(const char *path, nmf_array *out);
NMF_API nmf_status nmf_npy_write(const char *path, const float *data, int ndim, const int64_t *shape);
NMF_API void nmf_array_free(nmf_array *a);

/* ---- .npy token ids: '<i8' (NumPy's and torch.long's default) or '<i4' read, '<i8' written ---- */
typedef struct {
    int ndim;
    int64_t shape[NMF_MAX_DIMS];
    size_t numel;
    int64_t *data; /* malloc'd via nmf_alloc; values as stored (checking them is the model's job) */
} nmf_id_array;
NMF_API nmf_status nmf_npy_read_ids(const char *path, nmf_id_array *out);
NMF_API nmf_status nmf_npy_write_ids(const char *path, const int64_t *data, int ndim, const int64_t *shape);
NMF_API void nmf_id_array_free(nmf_id_array *a);

/* ---- safetensors (F32/F16/BF16 read; written as dtype chosen) ---- */
NMF_API nmf_status nmf_safetensors_read(const char *path, nmf_tensor_set *out);
/* As nmf_safetensors_read; when dtypes is not NULL, *dtypes (malloc'd, caller frees) receives
 * the stored dtype of each tensor, in the order of out->items. */
NMF_API nmf_status nmf_safetensors_read_ex(const char *path, nmf_tensor_set *out, nmf_dtype **dtypes);
/* Writes every tensor dense (N:M tensors unpacked, zeros where pruned) plus all metadata. */
NMF_API nmf_status nmf_safetensors_write(const char *path, const nmf_tensor_set *s, nmf_dtype dtype);

/* ---- .nmf family container (docs/FORMAT.md) ---- */
#define NMF_FAMILY_MAX_MODELS 64

typedef struct {
    char name[32];          /* "dense", "4:8", "2:8", ... */
    nmf_tensor_set tensors; /* every tensor of that model; N:M weights held as nm */
} nmf_candidate;

typedef struct {
    nmf_model_config config;
    nmf_candidate *models;
    size_t count;
} nmf_family;

NMF_API void nmf_family_init(nmf_family *f);
NMF_API void nmf_family_free(nmf_family *f);
/* Adds a candidate (tensors moved in; caller's set is re-initialised). Names must be unique. */
NMF_API nmf_status nmf_family_add(nmf_family *f, const char *name, nmf_tensor_set *tensors);
NMF_API nmf_candidate *nmf_family_find(const nmf_family *f, const char *name);

typedef struct {
    nmf_dtype value_dtype; /* dtype of stored values (dense tensors and N:M kept values) */
} nmf_write_options;

/* Tensors with identical dtype, shape, pattern and bytes across candidates are stored once. */
NMF_API nmf_status nmf_family_write(const char *path, const nmf_family *f, const nmf_write_options *opt);
NMF_API nmf_status nmf_family_read(const char *path, nmf_family *out);

/* ---- an .nmf family written one tensor at a time (what nmf_family_write does for a family
 * held whole; streaming prune and convert add each tensor as it is made) ----
 * plan: the family to write; only its config, candidate names and metadata and each tensor's
 * name, shape and N:M form (nm->pattern, nm_transposed) are read, so its tensors may be headers
 * without values. It must stay unchanged until commit or abort. add stores tensor t (values
 * now) as the entry of model `model` with t's name; its shape and N:M form must be the plan's.
 * A payload equal to one stored before is shared. The output is atomic (temporary file +
 * fsync + rename): commit fails, leaving nothing behind, when a planned tensor was never added;
 * abort (or any failed commit) removes the temporary file. Memory: one tensor's payload (a
 * device or FIFO output, written in order, keeps the payloads until commit). */
typedef struct nmf_family_writer nmf_family_writer;
NMF_API nmf_status nmf_family_writer_open(const char *path, const nmf_family *plan,
                                          const nmf_write_options *opt, nmf_family_writer **out);
NMF_API nmf_status nmf_family_writer_add(nmf_family_writer *w, size_t model, const nmf_tensor *t);
/* Writes the header and table and publishes the file; frees w (also on failure). */
NMF_API nmf_status nmf_family_writer_commit(nmf_family_writer *w);
NMF_API void nmf_family_writer_abort(nmf_family_writer *w);

/* Where each tensor of a family file is stored (for `nmformer info`): one entry per
 * (model, tensor), in file order. Entries with the same payload index share one payload. */
typedef struct {
    size_t model, tensor;  /* indices into nmf_family.models[model].tensors.items[tensor] */
    nmf_dtype dtype;       /* stored value dtype */
    nmf_pattern pattern;   /* {0, 0} for a dense payload */
    uint64_t offset, size; /* payload bytes, offset relative to the data section */
    size_t payload;        /* index of the distinct payload (0..payloads-1) */
} nmf_stored_tensor;
typedef struct {
    nmf_stored_tensor *items;
    size_t count;
    size_t payloads;     /* distinct payloads */
    uint32_t version;
    uint64_t file_size, data_offset, data_size, json_size;
} nmf_family_layout;
/* nmf_family_read plus the layout (layout may be NULL). */
NMF_API nmf_status nmf_family_read_layout(const char *path, nmf_family *out, nmf_family_layout *layout);
NMF_API void nmf_family_layout_free(nmf_family_layout *layout);

/* ---- an .nmf family opened to load one candidate at a time ----
 * nmf_family_open checks the header, the metadata and the whole tensor table (every offset, size
 * and shared payload) but reads no payload: the file stays on disk and each payload is mapped
 * only while it is decoded, so loading one candidate costs that candidate's memory, never the
 * family's (nmf_load_model loads an .nmf candidate this way). A payload's zero padding and CRC
 * are checked when a load first touches it (an error names the tensor and the model);
 * nmf_family_file_verify checks every payload's, as nmf_family_read does. */
typedef struct nmf_family_file nmf_family_file;
NMF_API nmf_status nmf_family_open(const char *path, nmf_family_file **out);
NMF_API void nmf_family_close(nmf_family_file *f);
NMF_API const nmf_model_config *nmf_family_file_config(const nmf_family_file *f);
NMF_API size_t nmf_family_file_count(const nmf_family_file *f);
/* Name of candidate i ("dense", "2:8", ...); NULL when i >= count. */
NMF_API const char *nmf_family_file_name(const nmf_family_file *f, size_t i);
/* Candidate i's metadata (a set without tensors: nmf_tensors_get_meta); NULL when i >= count. */
NMF_API const nmf_tensor_set *nmf_family_file_metadata(const nmf_family_file *f, size_t i);
/* Candidate i's tensors and metadata into out (initialised here), values in f32 as
 * nmf_family_read gives them. */
NMF_API nmf_status nmf_family_file_load(const nmf_family_file *f, size_t i, nmf_tensor_set *out);
NMF_API nmf_status nmf_family_file_verify(const nmf_family_file *f);

/* ---- checking a model file's stored bytes (`nmformer info --verify`) ---- */
typedef struct {
    const char *model;  /* candidate name ("dense" for a one-model file) */
    const char *tensor; /* NULL: the file as a whole (header, table) */
    nmf_status status;
    const char *detail; /* the error text */
} nmf_verify_problem;
typedef void (*nmf_verify_fn)(const nmf_verify_problem *p, void *user);
/* Every distinct payload of f: zero padding and CRC, and for an N:M payload its index codes and
 * positions decoded and checked (rank range, zero padding bits, ascending positions, zero padding
 * values). Unlike nmf_family_file_verify it does not stop at the first bad payload: fn (may be
 * NULL) is called once per bad tensor entry (a shared payload names every entry using it), *bad
 * (may be NULL) counts them; the status is NMF_OK when every payload is good, else the first
 * problem's (NMF_ERR_CHECKSUM, NMF_ERR_FORMAT, ...). One payload is mapped at a time. */
NMF_API nmf_status nmf_family_file_check(const nmf_family_file *f, nmf_verify_fn fn, void *user,
                                         size_t *bad);
/* nmf_family_file_check of the file at path, or for a safetensors file / Hugging Face folder
 * (which hold no checksum) every header and tensor entry checked and every tensor's bytes read
 * and decoded. A file that does not open (bad header, table, sizes) is one problem with tensor
 * NULL. */
NMF_API nmf_status nmf_file_verify(const char *path, nmf_verify_fn fn, void *user, size_t *bad);

/* ---- families built from one model (src/model/family_build.c) ---- */
/* The dtype every candidate is stored in (nmf_tensors_stored_dtype); F32 when they differ. */
NMF_API nmf_dtype nmf_family_stored_dtype(const nmf_family *f);
/* A pruning run into fam (new: nmf_family_init + config = *cfg; or one read from a file to
 * extend): "dense", a dense copy of src, when with_dense, then per pattern src magnitude-pruned
 * to it (nmf_model_prune), named "N:M". cfg must equal fam's config, a name fam already holds or a
 * pattern given twice is NMF_ERR_INVALID_ARG (checked before anything is added).
 * *default_dtype (may be NULL): the dtype to write fam in when the caller names none: an
 * extended family's own, else the source's (a BF16 source stays BF16). */
NMF_API nmf_status nmf_family_prune(nmf_family *fam, const nmf_model_config *cfg,
                                    const nmf_tensor_set *src, const nmf_pattern *patterns,
                                    size_t count, int with_dense, nmf_dtype *default_dtype);
/* One model as a new family (fam is initialised here) of one candidate `name` (NULL: "dense");
 * a pattern name ("2:8") repacks the N:M-eligible weights, which must already be N:M sparse
 * (nmf_model_pack_nm). The tensors are moved in (re-initialised) on success. */
NMF_API nmf_status nmf_family_from_model(nmf_family *fam, const nmf_model_config *cfg,
                                         nmf_tensor_set *tensors, const char *name);
/* ---- family files made tensor by tensor (src/model/family_stream.c) ----
 * The source (a model folder, sharded or not, a safetensors file, or candidate `model` of an
 * .nmf; overrides as nmf_load_model_with) is read one tensor at a time and each tensor's outputs
 * are written to out (.nmf, nmf_family_writer) before the next is read, so memory is a few
 * tensors, never the model. The result is the family the whole-model functions give (the same
 * entries and values bit for bit; payloads ordered tensor by tensor). Atomic: on any failure (a
 * corrupt source tensor: the error names it) nothing is left at out. dtype NMF_DTYPE_COUNT: the
 * source's stored dtype (F32 when its tensors differ), *dtype_used (may be NULL) says which.
 * written (may be NULL): the family written, tensors as headers without values (names, shapes,
 * N:M forms), for a summary; free with nmf_family_free.
 * prune: nmf_family_prune's candidates (magnitude): "dense" when with_dense, then one per pattern.
 * convert: an .nmf source with model NULL: every candidate; else the one model as candidate
 * `model` (NULL: "dense"; a pattern name packs the N:M-eligible weights, which must already be
 * N:M: nmf_family_from_model). */
NMF_API nmf_status nmf_family_prune_file(const char *in, const char *model,
                                         const nmf_config_overrides *overrides, const char *out,
                                         const nmf_pattern *patterns, size_t count, int with_dense,
                                         nmf_dtype dtype, nmf_family *written, nmf_dtype *dtype_used);
/* `prune --add`: the family file `family` extended with one candidate per pattern pruned from in
 * (magnitude, as nmf_family_prune_file), streamed the same way: its candidates copied tensor by
 * tensor, then the new ones, into a new file that replaces it atomically. The source's config must
 * be the family's and no pattern may name a candidate it holds (NMF_ERR_INVALID_ARG). dtype
 * NMF_DTYPE_COUNT: the family's stored dtype (F32 when its candidates differ). written and
 * dtype_used as above (written lists every candidate, old and new). */
NMF_API nmf_status nmf_family_extend_file(const char *in, const char *model,
                                          const nmf_config_overrides *overrides, const char *family,
                                          const nmf_pattern *patterns, size_t count, nmf_dtype dtype,
                                          nmf_family *written, nmf_dtype *dtype_used);
NMF_API nmf_status nmf_family_convert_file(const char *in, const char *model,
                                           const nmf_config_overrides *overrides, const char *out,
                                           nmf_dtype dtype, nmf_family *written, nmf_dtype *dtype_used);
/* The same, also setting every written candidate's default precision (NMF_META_PRECISION) to
 * default_precision (NMF_PREC_COUNT: the sources' metadata as they are). */
NMF_API nmf_status nmf_family_convert_file_precision(const char *in, const char *model,
                                                     const nmf_config_overrides *overrides,
                                                     const char *out, nmf_dtype dtype,
                                                     nmf_precision default_precision,
                                                     nmf_family *written, nmf_dtype *dtype_used);

/* ---- a candidate's default precision ----
 * The arithmetic `run`, `eval` and `bench model` use for a candidate when no --precision is
 * given, set by `convert --default-precision`: the candidate metadata key below, value "f32",
 * "bf16" or "int8". nmf_candidate_precision gives NMF_PREC_COUNT when the key is absent and
 * NMF_ERR_FORMAT (naming the value) when it holds anything else. */
#define NMF_META_PRECISION "nmformer.precision"
NMF_API nmf_status nmf_candidate_precision(const nmf_tensor_set *s, nmf_precision *p);
NMF_API nmf_status nmf_candidate_set_precision(nmf_tensor_set *s, nmf_precision p);
/* The default precision of candidate `name` of the model file at path (NULL: a one-candidate
 * file's): read from an .nmf family's table without touching a payload; NMF_PREC_COUNT for a
 * candidate without one, for safetensors files and model folders, and for a FIFO or device
 * (never peeked: its bytes are the load's). */
NMF_API nmf_status nmf_file_default_precision(const char *path, const char *name, nmf_precision *p);
/* What `convert` copies of a family: every candidate checked against the config (the detail names
 * the model), then, when name is not NULL, only that candidate kept (NMF_ERR_NOT_FOUND if absent). */
NMF_API nmf_status nmf_family_select(nmf_family *fam, const char *name);

/* What a model file holds and what it costs, as the JSON document `nmformer info --json` prints
 * (docs/CLI.md): path is an .nmf family, a .safetensors model or a Hugging Face model folder.
 * Per model and per tensor: shape, N:M pattern, stored dtype, role, N:M eligibility, index-code
 * bits per group, stored bytes vs dense f32 bytes, payload id and the candidates sharing it;
 * per model the totals; the distinct payloads and the bytes that sharing saves; the config
 * (null for a safetensors file without a valid one) and, for a token model, a "model" object
 * (family, architecture, layers, heads, ...). *json: malloc'd text (free with nmf_free). */
NMF_API nmf_status nmf_file_info_json(const char *path, char **json);

/* What a model path holds, from its contents, never its name: a folder is a Hugging Face model
 * folder; a file that starts with the .nmf magic is a family; one whose 8-byte little-endian
 * header length is followed by '{' is safetensors. NMF_ERR_IO when the path cannot be read,
 * NMF_ERR_FORMAT when it is none of these. Every reader of a model path decides with this. */
typedef enum { NMF_FILE_UNKNOWN = 0, NMF_FILE_NMF, NMF_FILE_SAFETENSORS, NMF_FILE_HF_FOLDER } nmf_file_kind;
NMF_API nmf_status nmf_file_kind_detect(const char *path, nmf_file_kind *kind);
NMF_API const char *nmf_file_kind_name(nmf_file_kind kind); /* "nmf", "safetensors", "hf folder" */
/* *token = 1 when path holds a token model (BERT, GPT-2, LLaMA), 0 for a ViT, told from what is
 * cheap to read, no tensor: a model folder holds a token model (config.json); an .nmf says by its
 * family config (header and table only); a safetensors file by its nmformer.config metadata (the
 * header only; none: a ViT whose config the caller gives). So that a command picks its loader
 * (nmf_lm_load_with builds a family candidate layer by layer) before it loads anything. A path
 * that is neither a regular file nor a folder (a FIFO would lose what is read) is
 * NMF_ERR_UNSUPPORTED, read not at all. */
NMF_API nmf_status nmf_file_is_token_model(const char *path, int *token);

/* Loads one model from .nmf (name picks a candidate; NULL: the only one, else error listing the
 * names) or .safetensors (name must be NULL or "dense"); config from the file, or from
 * *fallback_config when the file has none (fallback may be NULL). Tensors are checked against the
 * config (nmf_model_check_tensors). */
NMF_API nmf_status nmf_load_model(const char *path, const char *name, const nmf_model_config *fallback_config,
                          nmf_model_config *config, nmf_tensor_set *tensors);
/* nmf_load_model with config values given by the caller (may be NULL): over the file's own
 * config they must agree with it (a contradiction is an error naming the key); without one they
 * complete fallback_config (or the defaults, when it is NULL). The tensors' nmformer.config
 * metadata is set to the config used. */
NMF_API nmf_status nmf_load_model_with(const char *path, const char *name,
                               const nmf_model_config *fallback_config,
                               const nmf_config_overrides *overrides, nmf_model_config *config,
                               nmf_tensor_set *tensors);

/* nmf_load_model_with, except that every dense tensor stored BF16 or F16 keeps its stored 16-bit values
 * (nmf_tensor's data16, data NULL) instead of being widened to f32, so that a model built from
 * the set holds its weights in their storage precision (nmf_lm_load). N:M payloads and F32
 * tensors are read as nmf_load_model reads them. */
NMF_API nmf_status nmf_load_model_keep16(const char *path, const char *name,
                                         const nmf_model_config *fallback_config,
                                         const nmf_config_overrides *overrides,
                                         nmf_model_config *config, nmf_tensor_set *tensors);

/* ---- Hugging Face model folders: config.json + model.safetensors, or shards
 *      model-0000i-of-0000n.safetensors listed in model.safetensors.index.json ---- */
/* nmf_hf_config and its enums are in config.h (a token family's model config). */

/* Parses and validates config.json text; `what` (a path) starts every error. A missing required
 * key is NMF_ERR_NOT_FOUND, a wrong type or a value out of range NMF_ERR_FORMAT, a feature we do
 * not implement (rope_scaling, relative positions, ...) NMF_ERR_UNSUPPORTED; the detail names the
 * key as written in the file. */
NMF_API nmf_status nmf_hf_config_parse(const char *json, size_t len, const char *what, nmf_hf_config *out);
/* dir/config.json */
NMF_API nmf_status nmf_hf_config_read(const char *dir, nmf_hf_config *out);
/* Every tensor of dir/model.safetensors or, when there is none (HF's order), of the shards that
 * dir/model.safetensors.index.json lists: each shard is read once; every tensor of the index
 * must be in the shard it is mapped to and in no other; shard names are plain file names in dir
 * (no '/', no "..") and tensor names are listed once. When dtypes is not NULL, *dtypes
 * (malloc'd, caller frees) receives each tensor's stored dtype in the order of out->items. */
NMF_API nmf_status nmf_hf_weights_read(const char *dir, nmf_tensor_set *out, nmf_dtype **dtypes);
/* nmf_hf_config_read + nmf_hf_weights_read. The tensors are not yet checked against the
 * config: that belongs to each family's parameter table. */
NMF_API nmf_status nmf_hf_folder_read(const char *dir, nmf_hf_config *config, nmf_tensor_set *tensors);

/* ---- writing a Hugging Face model folder (docs/HF.md) ---- */
typedef struct {
    nmf_dtype dtype; /* stored dtype of model.safetensors (a BF16 source: BF16) */
    int force;       /* replace an existing, non-empty model folder (config.json, no subfolder) */
    /* 0: one model.safetensors. Else, as save_pretrained's max_shard_size: the tensors in order,
     * a new shard whenever the next one would take this one past max_shard_bytes (a tensor larger
     * than that alone in its shard), written as model-0000i-of-0000n.safetensors with
     * model.safetensors.index.json; one shard is model.safetensors, no index. */
    uint64_t max_shard_bytes;
} nmf_hf_write_options;
/* Writes dir/config.json (nmf_hf_config_to_json of c->hf, plus "torch_dtype") and
 * dir/model.safetensors (or its shards, above): every tensor of s under its own name (the HF names it was read with),
 * dense in its stored shape (N:M weights unpacked, zeros where pruned; GPT-2's Conv1D [in, out]),
 * metadata {"format": "pt"} as save_pretrained writes it. c is a token family's config and s must
 * hold exactly its tensors (nmf_model_check_tensors; the detail names the tensor). opt NULL: the
 * sources' dtype (nmf_tensors_stored_dtype), no force.
 * Atomic: the files go into a temporary folder next to dir ("<dir>.XXXXXX.tmp"), are fsync'ed
 * and the folder is renamed to dir. dir may be absent or an empty folder; a non-empty folder is
 * refused unless force, and even then unless it looks like a model folder (holds config.json and
 * no subfolder): its files are replaced as a whole. A file or a symlink at dir is refused. On any
 * failure dir is as it was and nothing else is left behind. */
NMF_API nmf_status nmf_hf_folder_write(const char *dir, const nmf_model_config *c, const nmf_tensor_set *s,
                                       const nmf_hf_write_options *opt);

/* ---- one model streamed to a dense output (src/model/dense_stream.c) ----
 * The source (as nmf_family_prune_file's: a model folder, sharded or not, a safetensors file, or
 * candidate `model` of an .nmf) is read one tensor at a time and each tensor is written before
 * the next is read: to a .safetensors file (nmf_safetensors_write's form, the loader's metadata)
 * or, with folder, a Hugging Face model folder (nmf_hf_folder_write's form; a token model only).
 * Memory is a few tensors, never the model. The bytes are those of loading the model whole
 * (nmf_load_model_with), pruning it (nmf_model_prune) when asked and writing it with
 * nmf_safetensors_write or nmf_hf_folder_write. Atomic as those: on any failure (a corrupt source
 * tensor: the error names it) out is as it was and nothing is left beside it. Progress per
 * tensor (step "convert" or "prune", bytes of the source). *dtype_used (may be NULL): the dtype
 * written. */
typedef struct {
    nmf_dtype dtype;   /* stored dtype; NMF_DTYPE_COUNT: the source's (F32 when its tensors differ) */
    nmf_pattern prune; /* {0, 0}: the values as read; N:M: every N:M-eligible weight magnitude-pruned
                        * to it (nmf_model_prune), stored dense with zeros */
    int folder;        /* 1: out is a model folder; 0: a .safetensors file */
    int force;                /* a folder: as nmf_hf_write_options */
    uint64_t max_shard_bytes; /* a folder: as nmf_hf_write_options (0: one model.safetensors) */
} nmf_dense_write_options;
NMF_API nmf_status nmf_dense_convert_file(const char *in, const char *model,
                                          const nmf_config_overrides *overrides, const char *out,
                                          const nmf_dense_write_options *opt, nmf_dtype *dtype_used);

#ifdef __cplusplus
}
#endif
#endif
