"""Tensor sets (nmf_tensor_set) owned from Python, and their conversion to and from numpy.

Every value the library holds is float32; arrays coming in are cast (any real dtype, any
contiguity), torch tensors are taken through ``.detach().cpu()``.
"""
import ctypes

import numpy as np

from nmformer._capi import TensorSet, MAX_DIMS, api
from nmformer.errors import check, InvalidArgumentError, ShapeError

F32P = ctypes.POINTER(ctypes.c_float)


class OwnedSet:
    """An nmf_tensor_set allocated here and freed (nmf_tensors_free) when collected."""

    def __init__(self):
        self.set = TensorSet()
        self._lib = api()
        self._lib.nmf_tensors_init(ctypes.byref(self.set))

    def ptr(self):
        return ctypes.pointer(self.set)

    def __del__(self):
        lib = getattr(self, "_lib", None)
        if lib is not None:
            lib.nmf_tensors_free(ctypes.byref(self.set))


def _host_array(value):
    """A numpy array of a numpy array, a torch tensor (anything with ``.detach().cpu()``;
    bf16 / f16 widened to f32, numpy has no bfloat16), a list or a scalar."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu()
        if not hasattr(value, "numpy") or str(getattr(value, "dtype", "")) in (
                "torch.bfloat16", "torch.float16"):
            value = value.float()
        value = value.numpy()
    return np.asarray(value)


def as_numpy(value, what):
    """A real-valued array (see _host_array) as C-contiguous float32."""
    arr = _host_array(value)
    if arr.dtype.kind not in "biuf":
        raise InvalidArgumentError(f"{what}: dtype {arr.dtype} is not a real number type",
                                   status=1)
    return np.ascontiguousarray(arr, dtype=np.float32)


def as_ids(value, what, shape=None, allow_bool=False):
    """Token ids (or BERT's token types / attention mask) as C-contiguous int64 (B, T).

    Any integer dtype (a bool mask where ``allow_bool``); floats are refused rather than
    truncated, since a float id is a mistake upstream. ``[T]`` is one sequence, ``[1, T]``.
    ``shape``: the (B, T) the array must have (the ids'); else it must hold at least one id.
    The values' range is the library's to check (it names the sequence and position)."""
    arr = _host_array(value)
    kind = arr.dtype.kind
    if not (kind in "iu" or (kind == "b" and allow_bool)):
        raise InvalidArgumentError(
            f"{what}: dtype {arr.dtype} is not an integer type (token ids are int64 or int32"
            f"{'; a mask may be bool' if allow_bool else ''}; cast with .astype(np.int64) if "
            "the values are whole)", status=1)
    if kind == "u" and arr.dtype.itemsize == 8 and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise InvalidArgumentError(f"{what}: {arr.max()} does not fit int64", status=1)
    given = list(arr.shape)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if shape is None and (arr.ndim != 2 or arr.size == 0):
        raise ShapeError(f"{what}: shape {given}, expected [B, T] or [T] with "
                         "B, T >= 1 (integer token ids)", status=7)
    if shape is not None and arr.shape != tuple(shape):
        raise ShapeError(f"{what}: shape {given}, must be the token ids' shape "
                         f"{list(shape)}", status=7)
    return np.ascontiguousarray(arr, dtype=np.int64)


def add_dense(owned, name, value):
    """Adds a dense tensor named ``name`` (copied) to an OwnedSet."""
    arr = as_numpy(value, name)
    if arr.ndim > MAX_DIMS:
        raise InvalidArgumentError(f"{name}: {arr.ndim}-D, at most {MAX_DIMS} dimensions",
                                   status=1)
    shape = (ctypes.c_int64 * MAX_DIMS)(*arr.shape)
    check(api().nmf_tensors_add_dense(owned.ptr(), name.encode(), arr.ndim, shape,
                                      arr.ctypes.data_as(F32P), None))


def tensors(tset):
    """The nmf_tensor entries of a set (a TensorSet or pointer to one), in order."""
    s = tset.contents if isinstance(tset, ctypes._Pointer) else tset
    return [s.items[i] for i in range(s.count)]


def dense_array(t):
    """A tensor's dense values as a new numpy array (N:M tensors unpacked, zeros where pruned)."""
    arr = np.empty(tuple(t.shape[:t.ndim]), dtype=np.float32)
    check(api().nmf_tensor_dense(ctypes.byref(t), arr.ctypes.data_as(F32P)))
    return arr


def pattern_text(p):
    """"dense" for {0,0}, else "N:M"."""
    return "dense" if p.n == 0 else f"{p.n}:{p.m}"


def tensor_pattern(t):
    """"N:M" for a tensor held packed, else "dense"."""
    return pattern_text(t.nm.contents.pattern) if t.nm else "dense"


def is_pattern(text):
    """Whether the library parses text as an N:M pattern."""
    from nmformer._capi import Pattern
    lib = api()
    ok = lib.nmf_pattern_parse(str(text).encode(), ctypes.byref(Pattern())) == 0
    lib.nmf_clear_error()
    return ok


def to_pattern(text):
    """A Pattern struct from "N:M" (validated by the library)."""
    from nmformer._capi import Pattern
    p = Pattern()
    check(api().nmf_pattern_parse(str(text).encode(), ctypes.byref(p)))
    return p
