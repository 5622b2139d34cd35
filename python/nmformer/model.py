"""Model: one model's weights (a candidate of a family, or a single checkpoint) and running it.

A Model holds its weights as the library does (N:M weights packed) and builds the inference
engine on the first run(). What run() takes depends on the model's kind (``config.arch``):
"vit" (images in, logits out: nmf_vit, below) or a token family, "bert" / "gpt2" / "llama"
(token ids in, the head's output out, and generate(): nmf_lm, _lm.py).
"""
import ctypes
import math
import threading

import numpy as np

from nmformer import _tensors
from nmformer._capi import api, vit_p
from nmformer._lm import LmEngine
from nmformer.config import Config, TOKEN_ARCHS, as_config
from nmformer.errors import check, InvalidArgumentError, ShapeError, UnsupportedError

DEFAULT_BATCH = 32  # images per forward, as `nmformer run --batch`


def dtype_code(dtype):
    """nmf_dtype of "f32" / "f16" / "bf16" (any case)."""
    code = ctypes.c_int()
    check(api().nmf_dtype_parse(str(dtype).encode(), ctypes.byref(code)))
    return code.value


class _VitEngine:
    """nmf_vit: images (N, C, S, S) -> logits (N, classes)."""

    def __init__(self, config, tset):
        self._lib = api()
        self.handle = vit_p()
        check(self._lib.nmf_vit_create(ctypes.byref(self.handle),
                                       ctypes.byref(config._to_c()), tset))
        self.config = config
        self.lock = threading.Lock()  # the engine's arena is shared: one forward at a time

    def run(self, images, batch_size, token_type_ids=None, attention_mask=None,
            return_pooler=False):
        c = self.config
        if token_type_ids is not None or attention_mask is not None or return_pooler:
            raise InvalidArgumentError("token_type_ids, attention_mask and return_pooler are for "
                                       "BERT models, not vit", status=1)
        x = _tensors.as_numpy(images, "images")
        if x.ndim < 3 or x.shape[-3:] != c.input_shape:
            raise ShapeError(
                f"images: shape {list(x.shape)}, the model expects [..., {c.in_chans}, "
                f"{c.img_size}, {c.img_size}] (float NCHW, normalised)", status=7)
        if batch_size < 1:
            raise InvalidArgumentError(f"batch_size {batch_size}: must be >= 1", status=1)
        lead = x.shape[:-3]
        n = math.prod(lead)
        per_image = c.in_chans * c.img_size * c.img_size
        x = x.reshape(n, per_image)
        out = np.empty((n, c.num_classes), dtype=np.float32)
        x_at, out_at = x.ctypes.data, out.ctypes.data  # C-contiguous float32: plain addresses
        forward = self._lib.nmf_vit_forward
        with self.lock:
            for i in range(0, n, batch_size):
                b = min(batch_size, n - i)
                check(forward(self.handle, out_at + 4 * i * c.num_classes,
                              x_at + 4 * i * per_image, b))
        return out.reshape(lead + (c.num_classes,))

    def weight_bytes(self):
        return self._lib.nmf_vit_weight_bytes(self.handle)

    def __del__(self):
        if getattr(self, "handle", None):
            self._lib.nmf_vit_free(self.handle)


_ENGINES = {"vit": _VitEngine, **dict.fromkeys(TOKEN_ARCHS, LmEngine)}


class EngineSlot:
    """Where a model's engine is kept, built on the first run (shared by the Model objects of
    one family candidate)."""

    def __init__(self):
        self.engine = None
        self.lock = threading.Lock()  # threads' first run() builds one engine


class Model:
    """One model: ``config``, weights in timm names, ``name`` ("dense", "2:8", ... or None).

    Get one from :func:`nmformer.load`, ``family[name]``, :func:`nmformer.from_state_dict` or
    :meth:`prune`. A model taken from a family shares the family's memory (the family stays
    alive as long as the model does).
    """

    def __init__(self, config, owner, locate, name=None, slot=None):
        """Internal: ``locate()`` returns a pointer to the nmf_tensor_set, which ``owner``
        keeps alive; ``slot`` holds the engine."""
        self.config = config
        self.name = name
        self._owner = owner
        self._locate = locate
        self._slot = slot or EngineSlot()

    # ---- what it holds ----------------------------------------------------------------------
    @property
    def kind(self):
        """The model family, ``config.arch`` ("vit", "bert", "gpt2", "llama")."""
        return self.config.arch

    def _set(self):
        return self._locate()

    @property
    def tensor_names(self):
        return [t.name.decode() for t in _tensors.tensors(self._set())]

    @property
    def pattern(self):
        """"dense", or the N:M pattern of its packed weights ("2:8")."""
        pats = {_tensors.tensor_pattern(t) for t in _tensors.tensors(self._set())} - {"dense"}
        if len(pats) > 1:
            return ",".join(sorted(pats))
        return pats.pop() if pats else "dense"

    def to_state_dict(self):
        """Every tensor as a numpy float32 array, in timm names and checkpoint order; N:M
        weights unpacked dense (zeros where pruned). ``torch.nn.Module.load_state_dict``
        accepts it after ``{k: torch.from_numpy(v) for k, v in sd.items()}``."""
        return {t.name.decode(): _tensors.dense_array(t) for t in _tensors.tensors(self._set())}

    def __repr__(self):
        c = self.config
        dim, depth = (c.hf["hidden_size"], c.hf["num_hidden_layers"]) if c.is_token else \
            (c.dim, c.depth)
        return (f"<nmformer.Model {self.name or '?'} {c.arch} dim={dim} depth={depth} "
                f"pattern={self.pattern}>")

    # ---- running ------------------------------------------------------------------------------
    def run(self, inputs, batch_size=DEFAULT_BATCH, *, token_type_ids=None, attention_mask=None,
            return_pooler=False):
        """The model's output for a batch; ``batch_size`` images or sequences per forward
        (threads: :func:`nmformer.set_threads`).

        ViT: ``inputs`` of shape (..., in_chans, img_size, img_size), normalised as the config
        says ((pixel/255 - mean) / std), any real dtype and layout (cast to float32 C order);
        returns float32 logits (..., num_classes). Non-finite inputs raise NumericError.

        Token models: ``inputs`` are token ids, any integer dtype (floats raise
        InvalidArgumentError), (B, T) or one sequence (T) taken as (1, T), each in
        [0, vocab_size), T <= max_position_embeddings. Returns float32 shaped as
        `nmformer run` writes it: causal LM logits (B, T, vocab), sequence classifier logits
        (B, num_labels), a bare model's last hidden state (B, T, hidden). BERT also takes
        ``token_type_ids`` (B, T) (default zeros) and ``attention_mask`` (B, T) of 0/1 or
        bool (1 = token, 0 = padding; default all ones); ``return_pooler=True`` returns
        ``(output, pooler_output (B, hidden))`` for a BERT with a pooler.
        """
        return self._engine().run(inputs, batch_size, token_type_ids=token_type_ids,
                                  attention_mask=attention_mask, return_pooler=return_pooler)

    def generate(self, prompt, tokens, temperature=0.0, top_k=0, seed=0, max_tokens=None,
                 stats=False):
        """Continues each prompt of a causal LM (GPT-2, LLaMA with an LM head) by ``tokens``
        new ids, as `nmformer generate`: one prefill of the prompt into a key/value cache,
        then one cached step per token. ``prompt``: integer ids (B, T) or (T). Greedy when
        ``temperature`` is 0 (the highest logit, the lowest id on ties), else sampled from
        softmax(logits / temperature) among the ``top_k`` highest (0: all) with the library's
        RNG seeded by ``seed``. ``max_tokens`` bounds the cache (default T + tokens).
        Returns int64 (B, T + tokens), the prompt first; with ``stats=True`` a pair
        (ids, {"prefill_seconds", "decode_seconds", "decode_tokens"})."""
        engine = self._engine()
        if not hasattr(engine, "generate"):
            raise UnsupportedError(f"generate: a {self.kind} model classifies images; generate "
                                   "needs a causal language model (GPT-2, LLaMA)", status=5)
        return engine.generate(prompt, tokens, temperature=temperature, top_k=top_k, seed=seed,
                               max_tokens=max_tokens, stats=stats)

    def _engine(self):
        slot = self._slot
        with slot.lock:
            if slot.engine is None:
                engine = _ENGINES.get(self.kind)
                if engine is None:  # an arch this package does not know
                    raise UnsupportedError(f"running a '{self.kind}' model is not supported by "
                                           "this version of the package", status=5)
                slot.engine = engine(self.config, self._set())
            return slot.engine

    __call__ = run

    def weight_bytes(self):
        """Bytes of weights the forward reads (N:M weights as packed)."""
        return self._engine().weight_bytes()

    # ---- deriving and saving ------------------------------------------------------------------
    def prune(self, pattern):
        """One-shot magnitude pruning (nmf_model_prune): a new Model with every N:M-eligible
        weight pruned to ``pattern`` ("2:8") along its input dimension and held packed."""
        out = _tensors.OwnedSet()
        check(api().nmf_model_prune(ctypes.byref(self.config._to_c()), self._set(),
                                    _tensors.to_pattern(pattern), out.ptr()))
        return _owned_model(self.config, out, name=str(pattern))

    def pack(self, pattern):
        """A new Model with the N:M-eligible weights held packed as ``pattern``; they must
        already be N:M sparse (nmf_model_pack_nm; InvalidArgumentError names the first that
        is not). For weights pruned elsewhere (a torch model trained with N:M masks)."""
        out = self._copy_dense()
        check(api().nmf_model_pack_nm(ctypes.byref(self.config._to_c()), out.ptr(),
                                      _tensors.to_pattern(pattern)))
        return _owned_model(self.config, out, name=str(pattern))

    def save(self, path, dtype="f32", name=None):
        """Writes the model: ``.safetensors`` (dense, zeros where pruned, config in the
        metadata) or ``.nmf`` (a family of one candidate named ``name``, default the model's
        name or "dense"; N:M weights stored packed). Writes are atomic."""
        path = str(path)
        code = dtype_code(dtype)
        lib = api()
        if path.endswith(".safetensors"):
            # the config travels in the metadata (a family's candidates hold it only once,
            # for the whole family)
            out = self._copy_dense()
            check(lib.nmf_tensors_set_meta(out.ptr(), b"nmformer.config",
                                           self.config.to_json().encode()))
            check(lib.nmf_safetensors_write(path.encode(), out.ptr(), code))
        elif path.endswith(".nmf"):
            from nmformer.family import Family
            fam = Family.new(self.config)
            fam.add(name or self.name or "dense", self)
            fam.save(path, dtype=dtype)
        else:
            raise InvalidArgumentError(f"{path}: want a .nmf or .safetensors file name", status=1)

    def _check(self):
        """Raises the library's error when the tensors do not fit the config."""
        check(api().nmf_model_check_tensors(ctypes.byref(self.config._to_c()), self._set()))

    def _copy_dense(self):
        out = _tensors.OwnedSet()
        lib = api()
        lib.nmf_tensors_free(out.ptr())  # copy_dense initialises it
        check(lib.nmf_tensors_copy_dense(self._set(), out.ptr()))
        return out

    def _copy(self):
        """An OwnedSet with the same tensors, N:M ones packed with the same pattern."""
        out = self._copy_dense()
        pat = self.pattern
        if pat != "dense":
            check(api().nmf_model_pack_nm(ctypes.byref(self.config._to_c()), out.ptr(),
                                          _tensors.to_pattern(pat)))
        return out


def _owned_model(config, owned, name=None):
    return Model(config, owned, owned.ptr, name=name)


def from_state_dict(state_dict, config, name=None, pattern=None):
    """A Model from tensors in timm names (a dict of numpy arrays, torch tensors or anything
    array-like; any real dtype). ``config`` is a Config, a dict, JSON text or a shape name.
    The tensors must be exactly the config's (ShapeError / NotFoundError with the library's
    message naming the first missing, extra or misshapen one). With ``pattern`` ("2:8") the
    N:M-eligible weights, which must already be N:M sparse, are held packed."""
    config = as_config(config)
    owned = _tensors.OwnedSet()
    for key, value in state_dict.items():
        _tensors.add_dense(owned, str(key), value)
    lib = api()
    check(lib.nmf_tensors_set_meta(owned.ptr(), b"nmformer.config", config.to_json().encode()))
    check(lib.nmf_model_check_tensors(ctypes.byref(config._to_c()), owned.ptr()))
    model = _owned_model(config, owned, name=name or "dense")
    return model.pack(pattern) if pattern else model


def load(path, name=None, config=None):
    """One model from a file: ``.nmf`` (candidate ``name``; may be omitted when the family
    holds one), ``.safetensors``, or a Hugging Face model folder (BERT, GPT-2, LLaMA:
    config.json + model.safetensors or its shards). The config comes from the file; ``config`` (a Config or a
    dict of fields) completes a safetensors file that has none and must agree with one that
    has: a contradiction in a size (img_size, patch, in_chans, dim, depth, heads, num_classes,
    mlp_ratio) raises InvalidArgumentError naming the key."""
    from nmformer._capi import ConfigOverrides, ModelConfig
    lib = api()
    overrides = ConfigOverrides()
    fallback = None
    if config is not None:
        fields = config.to_dict() if isinstance(config, Config) else dict(config)
        for key in ("img_size", "patch", "in_chans", "dim", "depth", "heads", "num_classes",
                    "mlp_ratio"):
            if fields.get(key) is not None:
                setattr(overrides, key, fields[key])
        # the whole config (mean and std too; a dict's missing keys: the defaults) for a file
        # that has none
        full = config if isinstance(config, Config) else Config.from_dict(fields)
        fallback = ctypes.byref(full._to_c())
    out = _tensors.OwnedSet()
    cfg = ModelConfig()
    check(lib.nmf_load_model_with(str(path).encode(), name.encode() if name else None, fallback,
                                  ctypes.byref(overrides), ctypes.byref(cfg), out.ptr()))
    model = _owned_model(Config._from_c(cfg), out, name=name)
    if model.name is None:
        model.name = model.pattern
    return model
