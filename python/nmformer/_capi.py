"""The C API as ctypes sees it: the public structs of include/nmformer/*.h, field for field, and
the signature of every function the package calls.

The struct layouts are checked against the C compiler's in the tests (tests/python: a small C
program prints sizeof/offsetof of each, the test compares them with these), so a header change
that is not mirrored here fails `make test` instead of corrupting memory.
"""
import ctypes as C

from nmformer import _loader
from nmformer.errors import LibraryError

MAX_DIMS = 4          # NMF_MAX_DIMS
FAMILY_MAX_MODELS = 64  # NMF_FAMILY_MAX_MODELS

size_t = C.c_size_t
status_t = C.c_int   # nmf_status
dtype_t = C.c_int    # nmf_dtype


class HfConfig(C.Structure):  # nmf_hf_config (a token family's config.json, config.h)
    _fields_ = [("model_type", C.c_int), ("architecture", C.c_char * 64),
                ("hidden_size", C.c_int), ("num_hidden_layers", C.c_int),
                ("num_attention_heads", C.c_int), ("num_key_value_heads", C.c_int),
                ("head_dim", C.c_int), ("intermediate_size", C.c_int), ("vocab_size", C.c_int),
                ("max_position_embeddings", C.c_int), ("type_vocab_size", C.c_int),
                ("norm_eps", C.c_float), ("rope_theta", C.c_double),
                ("tie_word_embeddings", C.c_int), ("hidden_act", C.c_int),
                ("attention_bias", C.c_int), ("mlp_bias", C.c_int), ("num_labels", C.c_int),
                ("head", C.c_int), ("pooler", C.c_int), ("prefix", C.c_char * 16)]


class ModelConfig(C.Structure):  # nmf_model_config
    _fields_ = [("arch", C.c_char * 16), ("img_size", C.c_int), ("patch", C.c_int),
                ("in_chans", C.c_int), ("dim", C.c_int), ("depth", C.c_int), ("heads", C.c_int),
                ("mlp_ratio", C.c_float), ("num_classes", C.c_int), ("mean", C.c_float),
                ("std", C.c_float), ("hf", HfConfig)]


class ConfigOverrides(C.Structure):  # nmf_config_overrides
    _fields_ = [("img_size", C.c_int), ("patch", C.c_int), ("in_chans", C.c_int),
                ("dim", C.c_int), ("depth", C.c_int), ("heads", C.c_int),
                ("num_classes", C.c_int), ("mlp_ratio", C.c_float)]


class Pattern(C.Structure):  # nmf_pattern
    _fields_ = [("n", C.c_int), ("m", C.c_int)]


class NmMatrix(C.Structure):  # nmf_nm_matrix
    _fields_ = [("rows", size_t), ("cols", size_t), ("groups", size_t), ("pattern", Pattern),
                ("values", C.POINTER(C.c_float)), ("pos", C.POINTER(C.c_uint8)),
                ("storage_", C.c_void_p)]


class Tensor(C.Structure):  # nmf_tensor
    _fields_ = [("name", C.c_char_p), ("ndim", C.c_int), ("shape", C.c_int64 * MAX_DIMS),
                ("numel", size_t), ("data", C.POINTER(C.c_float)),
                ("data16", C.POINTER(C.c_uint16)), ("nm", C.POINTER(NmMatrix)), ("nm_transposed", C.c_int),
                ("stored_dtype", C.c_int)]


class Meta(C.Structure):  # nmf_meta
    _fields_ = [("key", C.c_char_p), ("value", C.c_char_p)]


class TensorSet(C.Structure):  # nmf_tensor_set
    _fields_ = [("items", C.POINTER(Tensor)), ("count", size_t), ("cap", size_t),
                ("meta", C.POINTER(Meta)), ("meta_count", size_t), ("meta_cap", size_t),
                ("index_", C.POINTER(size_t)), ("index_cap_", size_t)]


class Candidate(C.Structure):  # nmf_candidate
    _fields_ = [("name", C.c_char * 32), ("tensors", TensorSet)]


class FamilyStruct(C.Structure):  # nmf_family
    _fields_ = [("config", ModelConfig), ("models", C.POINTER(Candidate)), ("count", size_t)]


class WriteOptions(C.Structure):  # nmf_write_options
    _fields_ = [("value_dtype", dtype_t)]


class StoredTensor(C.Structure):  # nmf_stored_tensor
    _fields_ = [("model", size_t), ("tensor", size_t), ("dtype", dtype_t), ("pattern", Pattern),
                ("offset", C.c_uint64), ("size", C.c_uint64), ("payload", size_t)]


class FamilyLayout(C.Structure):  # nmf_family_layout
    _fields_ = [("items", C.POINTER(StoredTensor)), ("count", size_t), ("payloads", size_t),
                ("version", C.c_uint32), ("file_size", C.c_uint64),
                ("data_offset", C.c_uint64), ("data_size", C.c_uint64),
                ("json_size", C.c_uint64)]


class ParamKind(C.Structure):  # nmf_param_kind
    _fields_ = [("name", C.c_char_p), ("role", C.c_int), ("per_block", C.c_int), ("nm", C.c_int),
                ("in_axis", C.c_int)]


class Param(C.Structure):  # nmf_param
    _fields_ = [("name", C.c_char * 64), ("kind", C.c_int), ("block", C.c_int), ("ndim", C.c_int),
                ("shape", C.c_int64 * MAX_DIMS), ("numel", size_t), ("rows", size_t),
                ("cols", size_t)]


LAYOUT_COUNT = 2      # NMF_LAYOUT_COUNT
DESC_MAX_KINDS = 32   # NMF_DESC_MAX_KINDS


class ModelDesc(C.Structure):  # nmf_model_desc
    _fields_ = [("config", ModelConfig), ("family", C.c_char_p), ("kinds", C.POINTER(ParamKind)),
                ("kind_count", C.c_int), ("params", C.POINTER(Param)), ("count", size_t),
                ("kind_offset", (size_t * DESC_MAX_KINDS) * LAYOUT_COUNT),
                ("kind_numel", size_t * DESC_MAX_KINDS), ("kind_first", size_t * DESC_MAX_KINDS),
                ("floats", size_t * LAYOUT_COUNT)]


# Token models (lm.h). Id and float buffers are plain addresses (numpy's arr.ctypes.data), as
# for nmf_vit_forward.
class LmInputs(C.Structure):  # nmf_lm_inputs: optional inputs of a forward (NULL: defaults)
    _fields_ = [("token_type_ids", C.c_void_p), ("attention_mask", C.c_void_p),
                ("pooler_output", C.c_void_p)]


class Sampling(C.Structure):  # nmf_sampling
    _fields_ = [("temperature", C.c_float), ("top_k", C.c_int), ("seed", C.c_uint64)]


class GenerateStats(C.Structure):  # nmf_generate_stats
    _fields_ = [("prefill_seconds", C.c_double), ("decode_seconds", C.c_double),
                ("decode_tokens", size_t)]


# nmf_hf_head: what a token model outputs (config.h)
HF_HEAD_NONE, HF_HEAD_LM, HF_HEAD_CLASSIFIER = 0, 1, 2


# For the layout test: C struct name -> ctypes class.
class PruneOptions(C.Structure):  # nmf_prune_options (prune.h)
    _fields_ = [("method", C.c_int), ("damp", C.c_double), ("block_cols", size_t),
                ("batch", size_t)]


class Calib(C.Structure):  # nmf_calib
    _fields_ = [("count", size_t), ("seq_len", size_t), ("sample_len", size_t),
                ("images", C.POINTER(C.c_float)), ("ids", C.POINTER(C.c_int64))]


class PruneStats(C.Structure):  # nmf_prune_stats
    _fields_ = [("seconds", C.c_double), ("samples", size_t), ("tokens", size_t),
                ("forwards", size_t)]


# nmf_calib_loader: fills the calibration set once the source's config is known (prune.h)
CalibLoader = C.CFUNCTYPE(C.c_int, C.POINTER(Calib), C.POINTER(ModelConfig), C.c_void_p)


STRUCTS = {
    "nmf_model_config": ModelConfig, "nmf_hf_config": HfConfig, "nmf_config_overrides": ConfigOverrides,
    "nmf_pattern": Pattern, "nmf_nm_matrix": NmMatrix, "nmf_tensor": Tensor, "nmf_meta": Meta,
    "nmf_tensor_set": TensorSet, "nmf_candidate": Candidate, "nmf_family": FamilyStruct,
    "nmf_write_options": WriteOptions, "nmf_stored_tensor": StoredTensor,
    "nmf_family_layout": FamilyLayout, "nmf_param_kind": ParamKind, "nmf_param": Param,
    "nmf_model_desc": ModelDesc, "nmf_lm_inputs": LmInputs, "nmf_sampling": Sampling,
    "nmf_generate_stats": GenerateStats, "nmf_prune_options": PruneOptions,
    "nmf_calib": Calib, "nmf_prune_stats": PruneStats,
}

P = C.POINTER
vit_p = C.c_void_p  # nmf_vit * (opaque)
lm_p = C.c_void_p   # nmf_lm * (opaque)

# name: (restype, argtypes)
_SIGNATURES = {
    # core
    "nmf_version": (C.c_char_p, []),
    "nmf_strerror": (C.c_char_p, [status_t]),
    "nmf_last_error": (C.c_char_p, []),
    "nmf_clear_error": (None, []),
    "nmf_set_threads": (None, [C.c_int]),
    "nmf_get_threads": (C.c_int, []),
    "nmf_active_isa": (C.c_int, []),
    "nmf_isa_name": (C.c_char_p, [C.c_int]),
    "nmf_free": (None, [C.c_void_p]),
    # patterns and dtypes
    "nmf_pattern_parse": (status_t, [C.c_char_p, P(Pattern)]),
    "nmf_pattern_format": (None, [Pattern, C.c_char_p, size_t]),
    "nmf_nm_code_bits": (C.c_int, [Pattern]),
    "nmf_dtype_parse": (status_t, [C.c_char_p, P(dtype_t)]),
    "nmf_dtype_name": (C.c_char_p, [dtype_t]),
    "nmf_dtype_size": (size_t, [dtype_t]),
    # config
    "nmf_model_config_default": (None, [P(ModelConfig)]),
    "nmf_model_shape_config": (status_t, [C.c_char_p, P(ModelConfig)]),
    "nmf_model_config_validate": (status_t, [P(ModelConfig)]),
    "nmf_model_config_from_json": (status_t, [C.c_char_p, P(ModelConfig)]),
    "nmf_model_config_to_json": (C.c_void_p, [P(ModelConfig)]),  # malloc'd: freed with libc free
    "nmf_model_check_tensors": (status_t, [P(ModelConfig), P(TensorSet)]),
    "nmf_model_is_token": (C.c_int, [P(ModelConfig)]),
    # tensor sets
    "nmf_tensors_init": (None, [P(TensorSet)]),
    "nmf_tensors_free": (None, [P(TensorSet)]),
    "nmf_tensors_add_dense": (status_t, [P(TensorSet), C.c_char_p, C.c_int, P(C.c_int64),
                                         P(C.c_float), P(P(Tensor))]),
    "nmf_tensors_find": (P(Tensor), [P(TensorSet), C.c_char_p]),
    "nmf_tensor_dense": (status_t, [P(Tensor), P(C.c_float)]),
    "nmf_tensors_set_meta": (status_t, [P(TensorSet), C.c_char_p, C.c_char_p]),
    "nmf_tensors_get_meta": (C.c_char_p, [P(TensorSet), C.c_char_p]),
    "nmf_tensors_copy_dense": (status_t, [P(TensorSet), P(TensorSet)]),
    "nmf_tensors_stored_dtype": (dtype_t, [P(TensorSet)]),
    # files
    "nmf_safetensors_read_ex": (status_t, [C.c_char_p, P(TensorSet), P(P(dtype_t))]),
    "nmf_safetensors_write": (status_t, [C.c_char_p, P(TensorSet), dtype_t]),
    "nmf_family_init": (None, [P(FamilyStruct)]),
    "nmf_family_free": (None, [P(FamilyStruct)]),
    "nmf_family_add": (status_t, [P(FamilyStruct), C.c_char_p, P(TensorSet)]),
    "nmf_family_write": (status_t, [C.c_char_p, P(FamilyStruct), P(WriteOptions)]),
    "nmf_family_read_layout": (status_t, [C.c_char_p, P(FamilyStruct), P(FamilyLayout)]),
    "nmf_family_layout_free": (None, [P(FamilyLayout)]),
    "nmf_file_info_json": (status_t, [C.c_char_p, P(C.c_void_p)]),
    "nmf_file_kind_detect": (status_t, [C.c_char_p, P(C.c_int)]),  # nmf_file_kind: 1 nmf, 2 st, 3 folder  # text freed with libc free
    "nmf_family_stored_dtype": (dtype_t, [P(FamilyStruct)]),
    "nmf_family_prune": (status_t, [P(FamilyStruct), P(ModelConfig), P(TensorSet), P(Pattern),
                                    size_t, C.c_int, P(dtype_t)]),
    # one-shot pruning with calibration (prune.h)
    "nmf_prune_options_default": (None, [P(PruneOptions)]),
    "nmf_model_is_token": (C.c_int, [P(ModelConfig)]),
    "nmf_prune_method_parse": (status_t, [C.c_char_p, P(C.c_int)]),
    "nmf_calib_load": (status_t, [P(Calib), P(ModelConfig), C.c_char_p, size_t]),
    "nmf_calib_default": (status_t, [P(Calib), P(ModelConfig), C.c_char_p, size_t, size_t]),
    "nmf_calib_free": (None, [P(Calib)]),
    "nmf_family_prune_oneshot": (status_t, [P(FamilyStruct), P(ModelConfig), P(TensorSet),
                                            P(Pattern), size_t, C.c_int, P(PruneOptions),
                                            P(Calib), P(dtype_t), P(PruneStats)]),
    "nmf_family_from_model": (status_t, [P(FamilyStruct), P(ModelConfig), P(TensorSet),
                                         C.c_char_p]),
    "nmf_family_select": (status_t, [P(FamilyStruct), C.c_char_p]),
    # streamed (tensor by tensor) prune / convert of a model path into an .nmf
    "nmf_family_prune_file": (status_t, [C.c_char_p, C.c_char_p, P(ConfigOverrides), C.c_char_p,
                                         P(Pattern), size_t, C.c_int, dtype_t, P(FamilyStruct),
                                         P(dtype_t)]),
    "nmf_family_extend_file": (status_t, [C.c_char_p, C.c_char_p, P(ConfigOverrides), C.c_char_p,
                                          P(Pattern), size_t, dtype_t, P(FamilyStruct), P(dtype_t)]),
    "nmf_family_prune_file_oneshot": (status_t, [C.c_char_p, C.c_char_p, P(ConfigOverrides),
                                                 C.c_char_p, P(Pattern), size_t, C.c_int, C.c_int,
                                                 P(PruneOptions), CalibLoader, C.c_void_p, dtype_t,
                                                 P(FamilyStruct), P(dtype_t), P(PruneStats)]),
    "nmf_family_convert_file": (status_t, [C.c_char_p, C.c_char_p, P(ConfigOverrides), C.c_char_p,
                                           dtype_t, P(FamilyStruct), P(dtype_t)]),
    "nmf_load_model_with": (status_t, [C.c_char_p, C.c_char_p, P(ModelConfig),
                                       P(ConfigOverrides), P(ModelConfig), P(TensorSet)]),
    # model description
    "nmf_model_describe": (status_t, [P(ModelDesc), P(ModelConfig)]),
    "nmf_model_desc_free": (None, [P(ModelDesc)]),
    "nmf_model_desc_find": (P(Param), [P(ModelDesc), C.c_char_p]),
    "nmf_param_role_name": (C.c_char_p, [C.c_int]),
    # models
    "nmf_model_prune": (status_t, [P(ModelConfig), P(TensorSet), Pattern, P(TensorSet)]),
    "nmf_model_pack_nm": (status_t, [P(ModelConfig), P(TensorSet), Pattern]),
    "nmf_vit_create": (status_t, [P(vit_p), P(ModelConfig), P(TensorSet)]),
    "nmf_vit_free": (None, [vit_p]),
    # float buffers as plain addresses (numpy's arr.ctypes.data): the per-call cost of building
    # ctypes pointer objects is most of a small model's Python overhead
    "nmf_vit_forward": (status_t, [vit_p, C.c_void_p, C.c_void_p, size_t]),
    "nmf_vit_weight_bytes": (size_t, [vit_p]),
    "nmf_lm_create": (status_t, [P(lm_p), P(ModelConfig), P(TensorSet)]),
    "nmf_lm_free": (None, [lm_p]),
    "nmf_lm_get_config": (P(ModelConfig), [lm_p]),
    "nmf_lm_output_floats": (size_t, [lm_p, size_t, size_t]),
    "nmf_lm_weight_bytes": (size_t, [lm_p]),
    # out (float addr), ids (int64 addr), B, T, inputs
    "nmf_lm_forward": (status_t, [lm_p, C.c_void_p, C.c_void_p, size_t, size_t, P(LmInputs)]),
    # out (int64 addr), prompt (int64 addr), B, T, G, sampling, max_tokens, stats
    "nmf_lm_generate": (status_t, [lm_p, C.c_void_p, C.c_void_p, size_t, size_t, size_t,
                                   P(Sampling), size_t, P(GenerateStats)]),
}


class _Api:
    """The loaded library with typed functions as attributes (lib.nmf_vit_create(...))."""

    def __init__(self):
        self.dll, self.path = _loader.load()
        missing = [n for n in _SIGNATURES if not hasattr(self.dll, n)]
        if missing:
            raise LibraryError(f"nmformer: {self.path} lacks {', '.join(missing)} (an older library "
                          "than this package? rebuild it with `make`)")
        for name, (res, args) in _SIGNATURES.items():
            f = getattr(self.dll, name)
            f.restype, f.argtypes = res, args
            setattr(self, name, f)
        libc = C.CDLL(None)
        self.free = libc.free  # for the malloc'd strings the library hands over
        self.free.restype, self.free.argtypes = None, [C.c_void_p]

    def take_string(self, ptr):
        """A malloc'd C string as str; frees it."""
        if not ptr:
            return None
        try:
            return C.string_at(ptr).decode()
        finally:
            self.free(ptr)


_api = None


def api():
    """The library, loaded on first use (importing nmformer needs no library)."""
    global _api
    if _api is None:
        _api = _Api()
    return _api
