"""Model configuration: nmf_vit_config as a Python dataclass.

The defaults, the named shapes, JSON parsing and validation are the library's (one shape table,
src/model/shapes.c); this module only converts.
"""
import ctypes
import dataclasses
import json

from nmformer._capi import VitConfig, api
from nmformer.errors import check, InvalidArgumentError


@dataclasses.dataclass(frozen=True)
class Config:
    """A model's configuration (timm-style ViT today; ``arch`` names the family).

    Build one with :meth:`default`, :meth:`shape` (``"vit-fmnist"``, ``"deit-small"``, ...),
    :meth:`from_dict` / :meth:`from_json` (missing keys keep the defaults), or take it from a
    file (``Family.config``, ``Model.config``). ``dataclasses.replace(c, dim=32)`` changes
    fields; :meth:`validate` checks a combination with the library's rules.
    """
    arch: str
    img_size: int
    patch: int
    in_chans: int
    dim: int
    depth: int
    heads: int
    mlp_ratio: float
    num_classes: int
    mean: float  # input normalisation: (pixel/255 - mean) / std
    std: float

    # ---- construction ----------------------------------------------------------------------
    @classmethod
    def default(cls, **changes):
        """The library's default config (shape "vit-fmnist"), with ``changes`` applied."""
        c = VitConfig()
        api().nmf_vit_config_default(ctypes.byref(c))
        return dataclasses.replace(cls._from_c(c), **changes)

    @classmethod
    def shape(cls, name, **changes):
        """A named shape of the library's table ("vit-fmnist", "vit-fmnist-full", "deit-tiny",
        "deit-small", "deit-base"), with ``changes`` applied."""
        c = VitConfig()
        check(api().nmf_vit_shape_config(name.encode(), ctypes.byref(c)))
        return dataclasses.replace(cls._from_c(c), **changes)

    @classmethod
    def from_json(cls, text):
        """Parses the JSON of the safetensors key ``nmformer.config`` (missing keys: defaults)."""
        c = VitConfig()
        lib = api()
        lib.nmf_vit_config_default(ctypes.byref(c))
        check(lib.nmf_vit_config_from_json(text.encode(), ctypes.byref(c)))
        return cls._from_c(c)

    @classmethod
    def from_dict(cls, d):
        return cls.from_json(json.dumps(d))

    # ---- conversion ------------------------------------------------------------------------
    def to_dict(self):
        return dataclasses.asdict(self)

    def to_json(self):
        """The JSON the library writes into files."""
        return api().take_string(api().nmf_vit_config_to_json(ctypes.byref(self._to_c())))

    def validate(self):
        """Raises InvalidArgumentError (the library's message) for an impossible config."""
        check(api().nmf_vit_config_validate(ctypes.byref(self._to_c())))
        return self

    # ---- derived sizes ---------------------------------------------------------------------
    @property
    def input_shape(self):
        """Shape of one input image: (in_chans, img_size, img_size)."""
        return (self.in_chans, self.img_size, self.img_size)

    # ---- C side ----------------------------------------------------------------------------
    @classmethod
    def _from_c(cls, c):
        return cls(arch=c.arch.decode(), img_size=c.img_size, patch=c.patch,
                   in_chans=c.in_chans, dim=c.dim, depth=c.depth, heads=c.heads,
                   mlp_ratio=float(c.mlp_ratio), num_classes=c.num_classes,
                   mean=float(c.mean), std=float(c.std))

    def _to_c(self):
        arch = self.arch.encode()
        if len(arch) >= 16:
            raise InvalidArgumentError(f"arch '{self.arch}' is longer than 15 bytes",
                                       status=1)
        return VitConfig(arch, self.img_size, self.patch, self.in_chans, self.dim, self.depth,
                         self.heads, self.mlp_ratio, self.num_classes, self.mean, self.std)


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
