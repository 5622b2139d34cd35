"""nmformer: N:M-sparse Transformers from Python (ctypes over libnmformer.so).

    import nmformer
    fam = nmformer.prune(torch_model.state_dict(), ["4:8", "2:8"], out="family.nmf",
                         config=nmformer.Config.default(dim=64))
    logits = fam["2:8"].run(images)             # numpy in, numpy out
    sd = fam["2:8"].to_state_dict()             # back to timm names, N:M weights dense
    lm = nmformer.prune("gpt2_folder", ["2:8"])["2:8"]   # Hugging Face BERT / GPT-2 / LLaMA
    seq = lm.generate(ids, 16)                  # int64 ids in and out; lm.run(ids): logits

See python/README.md. Errors are nmformer.Error (one subclass per library status) carrying the
library's message. The shared library is found at first use: NMFORMER_LIB, else the build tree
of the checkout, else the system's (nmformer.library_path() says which).
"""
from nmformer.config import Config
from nmformer.errors import (Error, InvalidArgumentError, OutOfMemoryError, FileError,
                             FormatError, UnsupportedError, ChecksumError, ShapeError,
                             NotFoundError, NumericError, LibraryError)
from nmformer.family import Family
from nmformer.info import info
from nmformer.model import Model, from_state_dict, load
from nmformer.tools import convert, prune

__version__ = "0.1.0"

__all__ = ["Config", "Family", "Model", "load", "from_state_dict", "prune", "convert", "info",
           "set_threads", "get_threads", "isa", "library_version", "library_path", "Error",
           "InvalidArgumentError", "OutOfMemoryError", "FileError", "FormatError",
           "UnsupportedError", "ChecksumError", "ShapeError", "NotFoundError", "NumericError",
           "LibraryError"]


def _lib():
    from nmformer._capi import api
    return api()


def set_threads(n):
    """Threads for the library's own loops (default: NMF_THREADS, else all cores)."""
    if int(n) < 1:
        raise InvalidArgumentError(f"set_threads({n}): need at least 1", status=1)
    _lib().nmf_set_threads(int(n))


def get_threads():
    return _lib().nmf_get_threads()


def isa():
    """The kernel family in use: "scalar", "avx2" or "avx512" (NMF_ISA forces one)."""
    lib = _lib()
    return lib.nmf_isa_name(lib.nmf_active_isa()).decode()


def library_version():
    """Version of the loaded libnmformer ("0.1.0")."""
    return _lib().nmf_version().decode()


def library_path():
    """Path of the loaded libnmformer.so."""
    return _lib().path
