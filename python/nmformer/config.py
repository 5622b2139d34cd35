"""Model configuration: nmf_model_config as a Python dataclass.

The defaults, the named shapes, JSON parsing and validation are the library's (one shape table,
src/model/shapes.c; one config.json reader, src/io/hf_config.c); this module only converts.
"""
import ctypes
import dataclasses
import json
from typing import Optional

from nmformer._capi import ModelConfig, api
from nmformer.errors import check, InvalidArgumentError

TOKEN_ARCHS = ("bert", "gpt2", "llama")


@dataclasses.dataclass(frozen=True)
class Config:
    """A model's configuration; ``arch`` names the family.

    ``"vit"`` (timm-style ViT) uses the fields ``img_size`` .. ``std``. The token families
    (``"bert"``, ``"gpt2"``, ``"llama"``, read from Hugging Face folders) leave those 0 and use
    ``hf`` (their config.json as transformers writes it), ``hf_prefix`` (what precedes the
    tensor names: "bert.", "transformer.", "model." or "") and ``hf_pooler`` (BERT's pooler).

    Build one with :meth:`default`, :meth:`shape` (``"vit-fmnist"``, ``"deit-small"``, ...),
    :meth:`from_dict` / :meth:`from_json` (missing keys keep the defaults), or take it from a
    file (``Family.config``, ``Model.config``). ``dataclasses.replace(c, dim=32)`` changes
    fields; :meth:`validate` checks a combination with the library's rules.
    """
    arch: str
    img_size: int = 0
    patch: int = 0
    in_chans: int = 0
    dim: int = 0
    depth: int = 0
    heads: int = 0
    mlp_ratio: float = 0.0
    num_classes: int = 0
    mean: float = 0.0  # input normalisation: (pixel/255 - mean) / std
    std: float = 0.0
    hf: Optional[dict] = None
    hf_prefix: str = ""
    hf_pooler: int = 0

    # ---- construction ----------------------------------------------------------------------
    @classmethod
    def default(cls, **changes):
        """The library's default config (shape "vit-fmnist"), with ``changes`` applied."""
        c = ModelConfig()
        api().nmf_model_config_default(ctypes.byref(c))
        return dataclasses.replace(cls._from_c(c), **changes)

    @classmethod
    def shape(cls, name, **changes):
        """A named shape of the library's table ("vit-fmnist", "vit-fmnist-full", "deit-tiny",
        "deit-small", "deit-base"), with ``changes`` applied."""
        c = ModelConfig()
        check(api().nmf_model_shape_config(name.encode(), ctypes.byref(c)))
        return dataclasses.replace(cls._from_c(c), **changes)

    @classmethod
    def from_json(cls, text):
        """Parses the JSON of the safetensors key ``nmformer.config`` (ViT: missing keys take
        the defaults; token families: ``{"arch": "gpt2", "hf": {config.json}, "prefix": ...,
        "pooler": ...}``)."""
        return cls._from_c(_parse(text))

    @classmethod
    def from_dict(cls, d):
        """From a dict of this class's fields (``to_dict()``) or of the library's JSON keys."""
        renamed = {"hf_prefix": "prefix", "hf_pooler": "pooler"}
        keys = {renamed.get(k, k): v for k, v in d.items() if v is not None}
        return cls.from_json(json.dumps(keys))

    # ---- conversion ------------------------------------------------------------------------
    def to_dict(self):
        return dataclasses.asdict(self)

    def to_json(self):
        """The JSON the library writes into files."""
        return api().take_string(api().nmf_model_config_to_json(ctypes.byref(self._to_c())))

    def validate(self):
        """Raises InvalidArgumentError (the library's message) for an impossible config."""
        check(api().nmf_model_config_validate(ctypes.byref(self._to_c())))
        return self

    @property
    def is_token(self):
        """A token family (BERT, GPT-2, LLaMA): ids in, not images."""
        return self.arch in TOKEN_ARCHS

    # ---- derived sizes ---------------------------------------------------------------------
    @property
    def input_shape(self):
        """ViT: shape of one input image, (in_chans, img_size, img_size)."""
        return (self.in_chans, self.img_size, self.img_size)

    # ---- C side ----------------------------------------------------------------------------
    @classmethod
    def _from_c(cls, c):
        vit = dict(arch=c.arch.decode(), img_size=c.img_size, patch=c.patch,
                   in_chans=c.in_chans, dim=c.dim, depth=c.depth, heads=c.heads,
                   mlp_ratio=float(c.mlp_ratio), num_classes=c.num_classes,
                   mean=float(c.mean), std=float(c.std))
        if not api().nmf_model_is_token(ctypes.byref(c)):
            return cls(**vit)
        # the token families' fields as the library writes them (config.json key names)
        lib = api()
        j = json.loads(lib.take_string(lib.nmf_model_config_to_json(ctypes.byref(c))))
        return cls(**vit, hf=j["hf"], hf_prefix=j["prefix"], hf_pooler=int(j["pooler"]))

    def _to_c(self):
        arch = self.arch.encode()
        if len(arch) >= 16:
            raise InvalidArgumentError(f"arch '{self.arch}' is longer than 15 bytes", status=1)
        if self.is_token:
            return _parse(json.dumps({"arch": self.arch, "hf": self.hf or {},
                                      "prefix": self.hf_prefix, "pooler": self.hf_pooler}))
        return ModelConfig(arch, self.img_size, self.patch, self.in_chans, self.dim, self.depth,
                           self.heads, self.mlp_ratio, self.num_classes, self.mean, self.std)


def _parse(text):
    """nmf_model_config_from_json over the default config."""
    c = ModelConfig()
    lib = api()
    lib.nmf_model_config_default(ctypes.byref(c))
    check(lib.nmf_model_config_from_json(text.encode(), ctypes.byref(c)))
    return c


def as_config(value):
    """A Config from a Config, a dict (missing keys: defaults), a JSON string or a shape name;
    validated."""
    if isinstance(value, Config):
        c = value
    elif isinstance(value, dict):
        c = Config.from_dict(value)
    elif isinstance(value, str):
        c = Config.from_json(value) if value.lstrip().startswith("{") else Config.shape(value)
    else:
        raise InvalidArgumentError(
            f"config: expected a Config, dict, JSON text or shape name, got {type(value).__name__}",
            status=1)
    return c.validate()
