"""Finding and loading libnmformer.so.

Where the library is looked for, in order (the first that exists is loaded):

1. ``NMFORMER_LIB``: an explicit path to the shared library (an error when it does not exist:
   a user who names a file wants that file, not a silent fallback);
2. the build tree next to the package source: ``<source>/build/libnmformer.so.0`` (then
   ``libnmformer.so``), where ``<source>`` is the checkout this package was run from
   (``PYTHONPATH=python``) or installed from (``pip install ./python`` records it);
3. the system's: ``ctypes.util.find_library("nmformer")`` (an installed ``libnmformer.so.0``).

When none works, the error lists every place looked at and why each was passed over.
"""
import ctypes
import ctypes.util
import os
from pathlib import Path

from nmformer.errors import LibraryError

LIB_NAMES = ("libnmformer.so.0", "libnmformer.so")  # SONAME first: compatible within 0.x


def _source_dirs():
    """Checkouts whose build/ may hold the library: the one this file sits in, then the one
    the package was installed from (written into _source.py by setup.py)."""
    here = Path(__file__).resolve().parent  # <source>/python/nmformer
    dirs = [here.parent.parent]
    try:
        from nmformer._source import SOURCE_DIR  # only in an installed copy
    except ImportError:
        SOURCE_DIR = None
    if SOURCE_DIR and Path(SOURCE_DIR) not in dirs:
        dirs.append(Path(SOURCE_DIR))
    return dirs


def _candidates():
    """(path or None, description) in search order; None = ask the system's search."""
    env = os.environ.get("NMFORMER_LIB")
    if env:
        yield Path(env), "NMFORMER_LIB"
        return
    for src in _source_dirs():
        for name in LIB_NAMES:
            yield src / "build" / name, "build tree"
    yield None, "system"


def find_library():
    """Path of the library that load() would open (a str), or raises LibraryError (an OSError)
    listing where it looked."""
    looked = []
    if not os.environ.get("NMFORMER_LIB"):
        looked.append("NMFORMER_LIB: not set")
    for path, what in _candidates():
        if path is None:
            found = ctypes.util.find_library("nmformer")
            if found:
                return found
            looked.append('system: ctypes.util.find_library("nmformer") found nothing')
        elif path.is_file():
            return str(path)
        else:
            looked.append(f"{what}: {path} does not exist")
    raise LibraryError(
        "nmformer: cannot find the shared library libnmformer.so; looked at:\n  "
        + "\n  ".join(looked)
        + "\nBuild it with `make` in the nmformer checkout, install it with "
        "`cmake --install build`, or set NMFORMER_LIB=/path/to/libnmformer.so.0")


def load():
    path = find_library()
    try:
        return ctypes.CDLL(path), path
    except OSError as e:
        raise LibraryError(f"nmformer: cannot load {path}: {e}") from e
