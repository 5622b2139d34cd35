"""Exceptions: one base class, nmformer.Error, and one subclass per nmf_status.

Every failure of a library call is raised as the subclass of its status, carrying the library's
one-line detail (nmf_last_error(), e.g. "x.nmf: header CRC mismatch"). Each subclass also derives
from the built-in exception a Python user would expect (a bad argument is a ValueError, a
missing file an OSError, a missing candidate a KeyError), so either can be caught.
"""

# nmf_status values (include/nmformer/core.h)
OK = 0
STATUS_NAMES = ("NMF_OK", "NMF_ERR_INVALID_ARG", "NMF_ERR_NOMEM", "NMF_ERR_IO", "NMF_ERR_FORMAT",
                "NMF_ERR_UNSUPPORTED", "NMF_ERR_CHECKSUM", "NMF_ERR_SHAPE", "NMF_ERR_NOT_FOUND",
                "NMF_ERR_NUMERIC")


class Error(Exception):
    """Any nmformer failure. ``message`` is the library's detail, ``status`` the nmf_status
    (an int; ``status_name`` spells it), or None for failures found before calling the
    library (the library file itself missing)."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.message = message
        self.status = status

    @property
    def status_name(self):
        if self.status is None or not 0 <= self.status < len(STATUS_NAMES):
            return None
        return STATUS_NAMES[self.status]

    def __str__(self):  # KeyError would otherwise print the message in quotes
        return self.message


class InvalidArgumentError(Error, ValueError):
    """NMF_ERR_INVALID_ARG: something passed in cannot be right."""


class OutOfMemoryError(Error, MemoryError):
    """NMF_ERR_NOMEM: an allocation failed or a size overflowed."""


class FileError(Error, OSError):
    """NMF_ERR_IO: open/read/write/rename failed (a missing file is one)."""


class FormatError(Error, ValueError):
    """NMF_ERR_FORMAT: a file is truncated, corrupt or malformed."""


class UnsupportedError(Error):
    """NMF_ERR_UNSUPPORTED: well formed, but a version/dtype/feature not handled."""


class ChecksumError(FormatError):
    """NMF_ERR_CHECKSUM: a CRC does not match (a corrupt file)."""


class ShapeError(Error, ValueError):
    """NMF_ERR_SHAPE: tensor or input shapes disagree."""


class NotFoundError(Error, KeyError):
    """NMF_ERR_NOT_FOUND: a named tensor / candidate / key is missing."""


class NumericError(Error, ValueError):
    """NMF_ERR_NUMERIC: NaN or Inf where a finite value is required."""


class LibraryError(Error, OSError):
    """libnmformer.so cannot be found or loaded (the message lists where it was looked for)."""


_BY_STATUS = {1: InvalidArgumentError, 2: OutOfMemoryError, 3: FileError, 4: FormatError,
              5: UnsupportedError, 6: ChecksumError, 7: ShapeError, 8: NotFoundError,
              9: NumericError}


def error_for(status, message):
    """The exception for a status and message."""
    return _BY_STATUS.get(status, Error)(message, status)


def check(status):
    """Raises the library's error for a failed call; returns None for NMF_OK."""
    if status == OK:
        return
    from nmformer._capi import api
    lib = api()
    detail = (lib.nmf_last_error() or b"").decode(errors="replace")
    if not detail:
        detail = (lib.nmf_strerror(status) or b"").decode(errors="replace")
    raise error_for(status, detail)
