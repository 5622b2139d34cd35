"""Family: the candidates of one .nmf file (dense, 4:8, 2:8, ...) sharing one config."""
import collections.abc
import ctypes

from nmformer import _tensors
from nmformer._capi import FamilyStruct, FamilyLayout, WriteOptions, api
from nmformer.config import Config, as_config
from nmformer.errors import check, NotFoundError
from nmformer.model import EngineSlot, Model, dtype_code


class Family(collections.abc.Mapping):
    """A family of candidates: a read-only mapping name -> :class:`Model` plus :meth:`add` and
    :meth:`save`.

    ``Family.open(path)`` reads (and checks: CRCs, codes, shapes) a whole ``.nmf`` file;
    ``family["2:8"]`` is a Model sharing the family's memory; ``family.candidates`` lists the
    names in file order; ``family.config`` is the shared Config; ``family.info()`` is what
    ``nmformer info --json`` prints about the file.
    """

    def __init__(self):
        """Internal; use Family.open or Family.new."""
        self._lib = api()
        self._fam = FamilyStruct()
        self._lib.nmf_family_init(ctypes.byref(self._fam))
        self._slots = {}   # name -> engine slot: one engine per candidate however often indexed
        self.path = None   # the file it was read from or last saved to
        self.dtype = "f32"  # stored value dtype: the file's, the default for save()

    def __del__(self):
        lib = getattr(self, "_lib", None)
        if lib is not None:
            lib.nmf_family_free(ctypes.byref(self._fam))

    @classmethod
    def open(cls, path):
        """Reads a ``.nmf`` family file (everything checked before anything is returned)."""
        fam = cls()
        layout = FamilyLayout()
        check(fam._lib.nmf_family_read_layout(str(path).encode(), ctypes.byref(fam._fam),
                                              ctypes.byref(layout)))
        try:
            if layout.count:
                fam.dtype = fam._lib.nmf_dtype_name(layout.items[0].dtype).decode().lower()
        finally:
            fam._lib.nmf_family_layout_free(ctypes.byref(layout))
        fam.path = str(path)
        return fam

    @classmethod
    def new(cls, config):
        """An empty family of this config (a Config, dict, JSON text or shape name)."""
        fam = cls()
        fam._fam.config = as_config(config)._to_c()
        return fam

    # ---- the mapping --------------------------------------------------------------------------
    @property
    def config(self):
        return Config._from_c(self._fam.config)

    @property
    def candidates(self):
        """Candidate names in file order ("dense", "4:8", ...)."""
        return [self._fam.models[i].name.decode() for i in range(self._fam.count)]

    def _index(self, name):
        for i in range(self._fam.count):
            if self._fam.models[i].name.decode() == name:
                return i
        raise NotFoundError(f"{self.path or 'family'}: no model '{name}' (available: "
                            f"{', '.join(self.candidates)})", status=8)

    def __getitem__(self, name):
        index = self._index(name)
        # located by index on each use: add() may move the candidate table. The engine slot
        # lives here (a model refers to its family, never the other way: no cycle), so
        # `family[name].run(x)` in a loop builds the engine once.
        slot = self._slots.setdefault(name, EngineSlot())
        return Model(self.config, self, lambda: ctypes.pointer(self._fam.models[index].tensors),
                     name=name, slot=slot)

    def __iter__(self):
        return iter(self.candidates)

    def __len__(self):
        return self._fam.count

    def __contains__(self, name):
        return name in self.candidates

    def __repr__(self):
        return f"<nmformer.Family {self.path or '(unsaved)'}: {', '.join(self.candidates)}>"

    # ---- changing and saving ------------------------------------------------------------------
    def add(self, name, model):
        """Adds a copy of ``model`` (same config) as candidate ``name`` (N:M weights stay
        packed). Names are unique, 1..31 bytes."""
        if model.config != self.config:
            from nmformer.errors import InvalidArgumentError
            raise InvalidArgumentError(
                f"model config {model.config.to_json()} differs from the family's "
                f"{self.config.to_json()}", status=1)
        self._add_owned(name, model._copy())

    def _add_owned(self, name, owned):
        """Moves an OwnedSet's tensors into the family (the set is left empty)."""
        check(self._lib.nmf_family_add(ctypes.byref(self._fam), str(name).encode(), owned.ptr()))

    def _take(self, name):
        """Moves candidate ``name``'s tensors out into an OwnedSet (the candidate is left
        empty: for families about to be dropped)."""
        owned = _tensors.OwnedSet()
        tensors = self._fam.models[self._index(name)].tensors
        self._slots.pop(name, None)
        ctypes.memmove(ctypes.byref(owned.set), ctypes.byref(tensors), ctypes.sizeof(tensors))
        self._lib.nmf_tensors_init(ctypes.byref(tensors))
        return owned

    def save(self, path, dtype=None):
        """Writes the family to ``path`` (.nmf, atomic). ``dtype`` of the stored values: "f32",
        "f16" or "bf16"; default: the dtype of the file it was read from, else f32. Tensors
        identical across candidates are stored once."""
        dtype = dtype or self.dtype
        opt = WriteOptions(dtype_code(dtype))
        check(self._lib.nmf_family_write(str(path).encode(), ctypes.byref(self._fam),
                                         ctypes.byref(opt)))
        self.path, self.dtype = str(path), dtype.lower()

    def info(self):
        """What ``nmformer info --json`` says about the file this family was read from or last
        saved to (see :func:`nmformer.info`)."""
        if self.path is None:
            from nmformer.errors import InvalidArgumentError
            raise InvalidArgumentError("info(): the family has not been saved to a file", status=1)
        from nmformer.info import info
        return info(self.path)
