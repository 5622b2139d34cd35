"""info(path): what a model file holds and what it costs, as ``nmformer info --json`` prints it.

The document is built by the library (nmf_file_info_json), the same text the CLI prints; this
module only parses it.
"""
import ctypes
import json

from nmformer._capi import api
from nmformer.errors import check


def info(path):
    """A dict describing a ``.nmf`` family, a ``.safetensors`` model or a Hugging Face model
    folder, the same as ``nmformer info PATH --json``: ``config`` (and ``model`` for a token
    model: family, architecture, layers, heads, ...); per model its tensors (shape, pattern,
    stored dtype, index-code bits per group, stored bytes vs dense f32 bytes, role, N:M
    eligibility, the candidates it shares its payload with), its totals and ratio; the distinct
    payloads and the bytes sharing saves."""
    lib = api()
    text = ctypes.c_void_p()
    check(lib.nmf_file_info_json(str(path).encode(), ctypes.byref(text)))
    return json.loads(lib.take_string(text.value))
