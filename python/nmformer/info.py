"""info(path): what a model file holds and what it costs, as ``nmformer info --json`` prints it.

The figures come from the library's readers (nmf_family_read_layout: where each tensor is
stored and which payloads candidates share; nmf_safetensors_read_ex: stored dtypes) and the model
description (role, N:M eligibility); this module only sums them per model and per payload.
"""
import ctypes
import json
import os

from nmformer import _tensors
from nmformer._capi import FamilyLayout, FamilyStruct, ModelDesc, TensorSet, api
from nmformer.config import Config
from nmformer.errors import check, Error


def _describe(config_c):
    """name -> (role, nm_eligible) from the model description, or {} when there is none."""
    lib = api()
    desc = ModelDesc()
    if lib.nmf_model_describe(ctypes.byref(desc), ctypes.byref(config_c)) != 0:
        lib.nmf_clear_error()
        return {}
    try:
        out = {}
        for i in range(desc.count):
            p = desc.params[i]
            kind = desc.kinds[p.kind]
            out[p.name.decode()] = (lib.nmf_param_role_name(kind.role).decode(), bool(kind.nm))
        return out
    finally:
        lib.nmf_model_desc_free(ctypes.byref(desc))


def _rows_nmf(path):
    lib = api()
    fam, layout = FamilyStruct(), FamilyLayout()
    check(lib.nmf_family_read_layout(path.encode(), ctypes.byref(fam), ctypes.byref(layout)))
    try:
        names = [fam.models[i].name.decode() for i in range(fam.count)]
        rows = []
        for i in range(layout.count):
            s = layout.items[i]
            t = fam.models[s.model].tensors.items[s.tensor]
            rows.append(dict(model=s.model, name=t.name.decode(), shape=list(t.shape[:t.ndim]),
                             dtype=lib.nmf_dtype_name(s.dtype).decode(),
                             pattern=_tensors.pattern_text(s.pattern),
                             code_bits=lib.nmf_nm_code_bits(s.pattern) if s.pattern.n else None,
                             stored=s.size, dense=t.numel * 4, payload=s.payload))
        return "nmf", Config._from_c(fam.config), names, rows, layout.payloads, layout.file_size
    finally:
        lib.nmf_family_layout_free(ctypes.byref(layout))
        lib.nmf_family_free(ctypes.byref(fam))


def _rows_safetensors(path):
    lib = api()
    tset = TensorSet()
    dtypes = ctypes.POINTER(ctypes.c_int)()
    check(lib.nmf_safetensors_read_ex(path.encode(), ctypes.byref(tset), ctypes.byref(dtypes)))
    try:
        config = None
        meta = lib.nmf_tensors_get_meta(ctypes.byref(tset), b"nmformer.config")
        if meta:
            try:
                config = Config.from_json(meta.decode()).validate()
            except Error:  # no valid config: reported as null, as the CLI does
                config = None
        rows = []
        for i in range(tset.count):
            t = tset.items[i]
            size = lib.nmf_dtype_size(dtypes[i])
            rows.append(dict(model=0, name=t.name.decode(), shape=list(t.shape[:t.ndim]),
                             dtype=lib.nmf_dtype_name(dtypes[i]).decode(), pattern="dense",
                             code_bits=None, stored=t.numel * size, dense=t.numel * 4, payload=i))
        return "safetensors", config, ["dense"], rows, tset.count, os.path.getsize(path)
    finally:
        lib.free(ctypes.cast(dtypes, ctypes.c_void_p))  # malloc'd by the reader
        lib.nmf_tensors_free(ctypes.byref(tset))


def info(path):
    """A dict describing a ``.nmf`` family or a ``.safetensors`` model, the same as
    ``nmformer info FILE --json``: ``config``; per model its tensors (shape, pattern, stored
    dtype, index-code bits per group, stored bytes vs dense f32 bytes, role, N:M eligibility,
    the candidates it shares its payload with), its totals and ratio; the distinct payloads and
    the bytes sharing saves."""
    path = str(path)
    if path.endswith(".nmf"):
        kind, config, names, rows, npayloads, file_size = _rows_nmf(path)
    elif path.endswith(".safetensors"):
        kind, config, names, rows, npayloads, file_size = _rows_safetensors(path)
    else:
        from nmformer.errors import InvalidArgumentError
        raise InvalidArgumentError(f"{path}: unknown file type (want .nmf or .safetensors)",
                                   status=1)
    roles = _describe(config._to_c()) if config is not None else {}
    refs = [0] * (npayloads + 1)
    for r in rows:
        r["first"] = refs[r["payload"]] == 0
        refs[r["payload"]] += 1
    for r in rows:
        r["refs"] = refs[r["payload"]]

    models = []
    for m, name in enumerate(names):
        tensors, stored, dense = [], 0, 0
        for i, r in enumerate(rows):
            if r["model"] != m:
                continue
            role = roles.get(r["name"])
            shared = [names[o["model"]] for j, o in enumerate(rows)
                      if r["refs"] > 1 and j != i and o["payload"] == r["payload"]
                      and o["model"] != m]
            tensors.append({
                "name": r["name"], "shape": r["shape"], "pattern": r["pattern"],
                "dtype": r["dtype"], "role": role[0] if role else None,
                "nm_eligible": role[1] if role else None,
                "code_bits_per_group": r["code_bits"], "stored_bytes": r["stored"],
                "dense_f32_bytes": r["dense"], "payload": r["payload"], "shared_with": shared})
            stored += r["stored"]
            dense += r["dense"]
        models.append({"name": name, "tensors": tensors, "stored_bytes": stored,
                       "dense_f32_bytes": dense, "ratio": stored / dense if dense else 0.0})
    payload_bytes = sum(r["stored"] for r in rows if r["first"])
    referenced = sum(r["stored"] for r in rows)
    shared = [{"tensor": r["name"], "payload": r["payload"], "bytes": r["stored"],
               "models": [names[o["model"]] for o in rows[i:] if o["payload"] == r["payload"]]}
              for i, r in enumerate(rows) if r["refs"] > 1 and r["first"]]
    return {"file": path, "format": kind, "file_bytes": file_size,
            "config": json.loads(config.to_json()) if config is not None else None,
            "models": models, "payloads": npayloads, "payload_bytes": payload_bytes,
            "referenced_bytes": referenced, "bytes_saved_by_sharing": referenced - payload_bytes,
            "shared": shared}
