"""prune and convert: what ``nmformer prune`` / ``nmformer convert`` do, from Python, with the same
library calls (so the files written are the same bytes)."""
import collections.abc
import ctypes
import os

from nmformer import _capi, _tensors
from nmformer._capi import Pattern, api
from nmformer.errors import InvalidArgumentError, check
from nmformer.family import Family
from nmformer.model import Model, dtype_code, from_state_dict, load


def _is_path(x):
    return isinstance(x, (str, os.PathLike))


def _is_family_file(path):
    """Whether an existing model path holds an .nmf family, from its contents (the magic bytes),
    as every reader of the library and the CLI decides; errors name the path."""
    kind = ctypes.c_int(0)
    check(api().nmf_file_kind_detect(str(path).encode(), ctypes.byref(kind)))
    return kind.value == 1  # NMF_FILE_NMF


def _source_model(source, config, model):
    """The dense model to prune from: a path (.safetensors, or an .nmf's candidate ``model``,
    default "dense"), a Model, a Family (its ``model`` or "dense") or a state dict (+ config)."""
    if _is_path(source):
        path = str(source)
        name = model or ("dense" if _is_family_file(path) else None)
        return load(path, name=name, config=config)
    if isinstance(source, Model):
        return source
    if isinstance(source, Family):
        return source[model or "dense"]
    if isinstance(source, collections.abc.Mapping):
        if config is None:
            raise InvalidArgumentError("prune: a state dict needs config= (a Config, dict or "
                                       "shape name)", status=1)
        return from_state_dict(source, config)
    raise InvalidArgumentError(f"prune: cannot read a model from {type(source).__name__}",
                               status=1)


def _patterns(patterns):
    """["4:8", "2:8"] from a list or "4:8,2:8", each parsed by the library, none twice."""
    if isinstance(patterns, str):
        patterns = patterns.split(",")
    names = []
    for p in patterns:
        name = _tensors.pattern_text(_tensors.to_pattern(p))
        if name in names:
            raise InvalidArgumentError(f"prune: pattern {name} given twice", status=1)
        names.append(name)
    if not names:
        raise InvalidArgumentError("prune: need at least one N:M pattern", status=1)
    return names


def prune(source, patterns, out=None, config=None, dtype=None, dense=True, model=None, add=False,
          method="magnitude", calib=None, calib_samples=None, damp=None, data=None, corpus=None,
          seq_len=None):
    """One-shot pruning into a family: in every N:M-eligible weight (the block linears) keep N
    of each group of M consecutive inputs, chosen by ``method``: "magnitude" (the N largest
    |w|), "wanda" (|w| times the norm of its input over calibration data) or "sparsegpt" (with
    the kept weights updated to make up for the pruned ones; ``damp``: its dampening, default
    0.01). Calibration (wanda, sparsegpt): ``calib``, a .npy file (float32 NCHW images for a
    ViT, int32/int64 token ids (B, T) for a token model), its first ``calib_samples`` (default
    128) samples; without it the default set: a Fashion-MNIST ViT's first training images
    (``data``: the IDX directory), a byte-level LM's windows of ``seq_len`` bytes (default its
    context) of the train split of its text ``corpus`` (default the fortunes corpus). The
    returned Family's ``calibration`` is then a dict of what it cost (seconds, samples, tokens,
    forwards); None for magnitude.

    ``source``: a path (.safetensors, .nmf, whose ``model`` candidate, default "dense", is
    pruned, or a Hugging Face model folder), a Model, a Family, or a state dict of numpy arrays /
    torch tensors in timm names (then ``config`` is required: a Config, dict of fields or shape
    name). ``patterns``: a list of "N:M" or "4:8,2:8". Returns the Family: "dense" (unless
    ``dense=False``) and one candidate per pattern, named "N:M" (built by the library's
    nmf_family_prune). With ``out`` (.nmf) it is also written, values as ``dtype`` ("f32",
    "f16", "bf16"; default: the source's). With ``add=True`` the candidates are appended to the
    existing family ``out`` (keeping its stored dtype unless ``dtype`` is given).
    A path source with ``out`` (no ``config``) is streamed: tensor by tensor by magnitude
    (nmf_family_prune_file, with ``add`` nmf_family_extend_file: memory is a few tensors), block
    by block by wanda / sparsegpt (nmf_family_prune_file_oneshot), and the Family read back from
    ``out``. Same bytes as ``nmformer prune SOURCE OUT --pattern ...
    [--method ...] [--add]``.
    """
    names = _patterns(patterns)
    lib = api()
    opts = _capi.PruneOptions()
    lib.nmf_prune_options_default(ctypes.byref(opts))
    code = ctypes.c_int()
    check(lib.nmf_prune_method_parse(str(method).encode(), ctypes.byref(code)))
    opts.method = code.value
    calibrated = opts.method != 0  # NMF_PRUNE_MAGNITUDE
    given = [k for k, v in (("calib", calib), ("calib_samples", calib_samples), ("damp", damp),
                            ("data", data), ("corpus", corpus), ("seq_len", seq_len)) if v is not None]
    if not calibrated and given:
        raise InvalidArgumentError(f"prune: {', '.join(given)}: for method wanda or sparsegpt",
                                   status=1)
    if damp is not None:
        if method != "sparsegpt":
            raise InvalidArgumentError("prune: damp is for method sparsegpt", status=1)
        opts.damp = float(damp)
    if calib is not None and (data is not None or corpus is not None or seq_len is not None):
        raise InvalidArgumentError("prune: data, corpus and seq_len choose the default "
                                   "calibration set; not with calib", status=1)
    if out is not None and not str(out).endswith(".nmf"):
        raise InvalidArgumentError(
            f"prune: {out}: a family is written as .nmf; for one pruned model use "
            "load(...).prune('2:8').save('x.safetensors')", status=1)
    pats = (Pattern * len(names))(*[_tensors.to_pattern(n) for n in names])
    k = int(calib_samples) if calib_samples is not None else 128
    if _is_path(source) and out is not None and config is None and calibrated:
        # a file to a family by wanda / sparsegpt: streamed block by block, as the CLI does (same
        # bytes); the calibration set is loaded once the library knows the source's config
        path = str(source)
        name = model or ("dense" if _is_family_file(path) else None)
        name = None if name is None else name.encode()
        code = _DTYPE_SOURCE if dtype is None else dtype_code(dtype)

        def load(cal, cfg, _user):
            if calib is not None:
                return lib.nmf_calib_load(cal, cfg, str(calib).encode(), k)
            where = corpus if lib.nmf_model_is_token(cfg) else data
            return lib.nmf_calib_default(cal, cfg, None if where is None else str(where).encode(), k,
                                         int(seq_len or 0))

        stats = _capi.PruneStats()
        check(lib.nmf_family_prune_file_oneshot(path.encode(), name, None, str(out).encode(), pats,
                                                len(names), int(dense), int(bool(add)),
                                                ctypes.byref(opts), _capi.CalibLoader(load), None,
                                                code, None, None, ctypes.byref(stats)))
        fam = Family.open(out)
        fam.calibration = {"seconds": stats.seconds, "samples": stats.samples,
                           "tokens": stats.tokens, "forwards": stats.forwards}
        return fam
    if _is_path(source) and out is not None and config is None:
        # a file to a new or extended family: streamed tensor by tensor, as the CLI does (same bytes)
        path = str(source)
        name = model or ("dense" if _is_family_file(path) else None)
        name = None if name is None else name.encode()
        code = _DTYPE_SOURCE if dtype is None else dtype_code(dtype)
        if add:
            check(lib.nmf_family_extend_file(path.encode(), name, None, str(out).encode(), pats,
                                             len(names), code, None, None))
        else:
            check(lib.nmf_family_prune_file(path.encode(), name, None, str(out).encode(), pats,
                                            len(names), int(dense), code, None, None))
        fam = Family.open(out)
        fam.calibration = None
        return fam
    src = _source_model(source, config, model)
    if add:
        if out is None:
            raise InvalidArgumentError("prune: add=True needs out= (the family to extend)",
                                       status=1)
        fam = Family.open(out)
    else:
        fam = Family.new(src.config)
    cfg = src.config._to_c()
    default = ctypes.c_int()
    cal, stats = _capi.Calib(), _capi.PruneStats()
    fam.calibration = None
    try:
        if calibrated:
            if calib is not None:
                check(lib.nmf_calib_load(ctypes.byref(cal), ctypes.byref(cfg), str(calib).encode(), k))
            else:
                where = corpus if lib.nmf_model_is_token(ctypes.byref(cfg)) else data
                check(lib.nmf_calib_default(ctypes.byref(cal), ctypes.byref(cfg),
                                            None if where is None else str(where).encode(), k,
                                            int(seq_len or 0)))
        check(lib.nmf_family_prune_oneshot(ctypes.byref(fam._fam), ctypes.byref(cfg), src._set(),
                                           pats, len(names), int(dense and not add),
                                           ctypes.byref(opts), ctypes.byref(cal),
                                           ctypes.byref(default), ctypes.byref(stats)))
    finally:
        lib.nmf_calib_free(ctypes.byref(cal))
    if calibrated:
        fam.calibration = {"seconds": stats.seconds, "samples": stats.samples,
                           "tokens": stats.tokens, "forwards": stats.forwards}
    if out is not None:
        fam.save(out, dtype=dtype or lib.nmf_dtype_name(default.value).decode().lower())
    return fam


_DTYPE_SOURCE = 3  # NMF_DTYPE_COUNT: the source's stored dtype


def _dtype_name(code):
    return api().nmf_dtype_name(code).decode().lower()


def convert(source, out, model=None, dtype=None, config=None):
    """Converts between .safetensors and .nmf, as ``nmformer convert`` (by file extension):

    * safetensors -> .nmf: one candidate named ``model`` (default "dense"); a pattern name
      ("2:8") stores the N:M-eligible weights packed (they must already be N:M sparse);
    * .nmf -> safetensors: candidate ``model`` (may be omitted when there is one), dense;
    * .nmf -> .nmf: every candidate, or only ``model``;
    * safetensors -> safetensors: re-encoded (e.g. ``dtype="bf16"``).

    ``dtype`` of the stored values: "f32", "f16", "bf16"; default: the source's (f32 when its
    tensors differ). ``config`` completes a safetensors file without config metadata. An .nmf
    output (without ``config``) is written tensor by tensor (nmf_family_convert_file), as the
    CLI's, byte for byte; with ``config`` the family is built whole (nmf_family_from_model).
    """
    src, out = str(source), str(out)
    if not (out.endswith(".nmf") or out.endswith(".safetensors")):  # an output: by its name
        raise InvalidArgumentError(f"convert: {out}: files must be .safetensors or .nmf",
                                   status=1)
    src_nmf, out_nmf = _is_family_file(src), out.endswith(".nmf")
    lib = api()
    if out_nmf and config is None:
        # streamed tensor by tensor, as the CLI does (same bytes)
        check(lib.nmf_family_convert_file(src.encode(), None if model is None else str(model).encode(),
                                          None, out.encode(),
                                          _DTYPE_SOURCE if dtype is None else dtype_code(dtype),
                                          None, None))
        return
    if src_nmf and out_nmf:
        if config is not None:
            raise InvalidArgumentError("convert: config applies to safetensors input only",
                                       status=1)
        fam = Family.open(src)
        fam._slots.clear()
        check(lib.nmf_family_select(ctypes.byref(fam._fam),
                                    None if model is None else str(model).encode()))
        fam.save(out, dtype=dtype or _dtype_name(lib.nmf_family_stored_dtype(ctypes.byref(fam._fam))))
        return
    if not src_nmf and not out_nmf and model not in (None, "dense"):
        raise InvalidArgumentError("convert: model= names a candidate of an .nmf file; both "
                                   "files here are safetensors", status=1)
    m = load(src, name=model if src_nmf else None, config=config)
    dtype = dtype or _dtype_name(lib.nmf_tensors_stored_dtype(m._set()))
    if not out_nmf:
        m.save(out, dtype=dtype)
        return
    fam = Family()
    cfg = m.config._to_c()  # the loaded tensors move into the family, as the CLI's do
    check(lib.nmf_family_from_model(ctypes.byref(fam._fam), ctypes.byref(cfg), m._owner.ptr(),
                                    str(model or "dense").encode()))
    fam.save(out, dtype=dtype)
