"""The token models' engine (nmf_lm, include/nmformer/lm.h): BERT, GPT-2 and LLaMA.

Ids in (int64 (B, T)), the head's output out, as `nmformer run` writes it:
    causal LM (GPT2LMHeadModel, LlamaForCausalLM)   logits (B, T, vocab)
    sequence classifier (BertForSequenceClassification)  logits (B, num_labels)
    bare model (BertModel, GPT2Model, LlamaModel)   last hidden state (B, T, hidden)
and generation (nmf_lm_generate: one prefill into a key/value cache, one cached step per new
token) as `nmformer generate` does it. The library checks the values (ids in the vocabulary,
token types, a 0/1 mask, T <= max_position_embeddings); this module checks types and shapes.
"""
import ctypes
import math
import operator
import threading

import numpy as np

from nmformer import _tensors
from nmformer._capi import (GenerateStats, HF_HEAD_CLASSIFIER, HF_HEAD_LM, LmInputs, Sampling,
                            api, lm_p)
from nmformer.errors import Error, InvalidArgumentError, check, error_for

_UINT64_MAX = (1 << 64) - 1
_INT_MAX = (1 << 31) - 1


def _whole(value, what, lo, hi):
    """An int in [lo, hi] (a Python or numpy integer; a float is refused, never truncated)."""
    try:
        v = operator.index(value)
    except TypeError:
        raise InvalidArgumentError(f"{what}: want an integer, got {value!r}", status=1) from None
    if not lo <= v <= hi:
        raise InvalidArgumentError(f"{what}: {v} is outside [{lo}, {hi}]", status=1)
    return v


class LmEngine:
    """nmf_lm over one model's tensors (copied by nmf_lm_create: the engine owns its weights)."""

    def __init__(self, config, tset):
        self._lib = api()
        self.handle = lm_p()
        check(self._lib.nmf_lm_create(ctypes.byref(self.handle), ctypes.byref(config._to_c()),
                                      tset))
        self.config = config
        hf = self._lib.nmf_lm_get_config(self.handle).contents.hf
        self.head, self.has_pooler = hf.head, bool(hf.pooler)
        self.hidden, self.vocab, self.labels = hf.hidden_size, hf.vocab_size, hf.num_labels
        self.lock = threading.Lock()  # the engine's activations are reused: one call at a time

    # ---- forward ----------------------------------------------------------------------------
    def run(self, ids, batch_size, token_type_ids=None, attention_mask=None, return_pooler=False):
        """The head's output for ids (B, T) (or (T): B = 1), batch_size sequences per forward
        as `nmformer run --batch`; with return_pooler also BERT's pooler output (B, hidden)."""
        ids = _tensors.as_ids(ids, "token ids")
        B, T = ids.shape
        types = None if token_type_ids is None else \
            _tensors.as_ids(token_type_ids, "token_type_ids", shape=(B, T))
        mask = None if attention_mask is None else \
            _tensors.as_ids(attention_mask, "attention_mask", shape=(B, T), allow_bool=True)
        batch_size = _whole(batch_size, "batch_size", 1, 1 << 20)
        if return_pooler and not self.has_pooler:
            raise InvalidArgumentError(f"return_pooler: this {self.config.arch} model has no "
                                       "pooler (pooler.dense.* tensors)", status=1)
        per_seq = self._lib.nmf_lm_output_floats(self.handle, 1, T)
        out = np.empty((B, per_seq), dtype=np.float32)
        pooled = np.empty((B, self.hidden), dtype=np.float32) if return_pooler else None
        forward = self._lib.nmf_lm_forward
        with self.lock:
            for i in range(0, B, batch_size):
                b = min(batch_size, B - i)
                inputs = LmInputs(None if types is None else types[i].ctypes.data,
                                  None if mask is None else mask[i].ctypes.data,
                                  None if pooled is None else pooled[i].ctypes.data)
                status = forward(self.handle, out[i].ctypes.data, ids[i].ctypes.data, b, T,
                                 ctypes.byref(inputs))
                _check_batch(status, i, b, B)
        out = out.reshape(self.output_shape(B, T))
        return (out, pooled) if return_pooler else out

    def output_shape(self, B, T):
        """The output's shape for B sequences of T tokens, by the head (as `nmformer run`)."""
        if self.head == HF_HEAD_LM:
            return (B, T, self.vocab)
        if self.head == HF_HEAD_CLASSIFIER:
            return (B, self.labels)
        return (B, T, self.hidden)

    # ---- generation -------------------------------------------------------------------------
    def generate(self, prompt, tokens, temperature=0.0, top_k=0, seed=0, max_tokens=None,
                 stats=False):
        """prompt (B, T) (or (T)) followed by `tokens` new ids each: int64 (B, T + tokens)."""
        ids = _tensors.as_ids(prompt, "prompt")
        B, T = ids.shape
        G = _whole(tokens, "tokens", 0, 1 << 30)
        top_k = _whole(top_k, "top_k", 0, _INT_MAX)
        seed = _whole(seed, "seed", 0, _UINT64_MAX)
        cap = 0 if max_tokens is None else _whole(max_tokens, "max_tokens", 1, 1 << 30)
        try:
            temperature = float(temperature)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"temperature: want a number, got {temperature!r}",
                                       status=1) from None
        if top_k and temperature == 0.0:  # as `nmformer generate`: top-k is a sampling option
            raise InvalidArgumentError("top_k samples, so it needs temperature > 0", status=1)
        if not (math.isfinite(temperature) and temperature >= 0.0):
            raise InvalidArgumentError(f"temperature: {temperature} is not a finite number >= 0",
                                       status=1)
        out = np.empty((B, T + G), dtype=np.int64)
        sampling = Sampling(temperature, top_k, seed)
        figures = GenerateStats()
        with self.lock:
            check(self._lib.nmf_lm_generate(self.handle, out.ctypes.data, ids.ctypes.data, B, T,
                                            G, ctypes.byref(sampling), cap,
                                            ctypes.byref(figures)))
        if not stats:
            return out
        return out, {"prefill_seconds": figures.prefill_seconds,
                     "decode_seconds": figures.decode_seconds,
                     "decode_tokens": figures.decode_tokens}

    def weight_bytes(self):
        return self._lib.nmf_lm_weight_bytes(self.handle)

    def __del__(self):
        if getattr(self, "handle", None):
            self._lib.nmf_lm_free(self.handle)


def _check_batch(status, first, count, total):
    """check(status) for the forward of sequences first .. first + count - 1; when the input was
    split into several forwards the library's "sequence k" counts within this one, so the
    message says where that one starts."""
    try:
        check(status)
    except Error as e:
        if count == total:
            raise
        where = f"in the forward of sequences {first}..{first + count - 1}"
        raise error_for(e.status, f"{e.message} [{where}: sequence k there is {first} + k]") \
            from None
