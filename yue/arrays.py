"""Reading .npy and .npz files given by users without trusting them.

`np.load` reads a header that may claim any shape (an .npz of a few KB can claim a 70 TiB array, or inflate to
gigabytes), and the zip layer fails with tracebacks on a truncated file. Here every array's header (dtype, shape,
byte count) and every zip member's declared size are checked against what the caller expects before a byte of
data is read or inflated, at most that many bytes are ever inflated, and Python objects (pickles) are never loaded.
Only the zip methods numpy writes are read (stored and deflate): Python's zipfile inflates a bzip2 or lzma member
with no cap on the output of one read (an 11 KB bzip2 member can become 2 GB at once), while its deflate reads stop
at the size asked for, and `_Capped` stops any member at its declared size.
"""
from __future__ import annotations

import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from .files import not_a_file

HEADER_BYTES = 4096  # an .npy header is ~128 bytes; numpy itself refuses headers over 10 000 bytes
# np.savez stores, np.savez_compressed deflates: the only methods a bundle of this app holds
ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}


class ArrayFileError(ValueError):
    """A code file or bundle that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Spec:
    """What one array may be: its number of dimensions, its dtype kinds (numpy's letters: "iu" = integers) and at
    most how many elements it holds."""

    ndims: tuple[int, ...]
    max_items: int
    kinds: str = "iu"


class _Capped:
    """A binary stream that hands out at most `limit` bytes in all: a member that holds more than it declared is
    refused after `limit + 1` bytes, whatever the decompressor would produce."""

    def __init__(self, handle, limit: int, where: str):
        self.handle, self.left, self.where = handle, limit, where

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > self.left + 1:
            size = self.left + 1
        data = self.handle.read(size)
        self.left -= len(data)
        if self.left < 0:
            raise ArrayFileError(f"{self.where} holds more data than its zip entry declares")
        return data


def _header(handle, where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    try:
        version = npy_format.read_magic(handle)
        if version == (1, 0):
            return npy_format.read_array_header_1_0(handle)
        if version == (2, 0):
            return npy_format.read_array_header_2_0(handle)
    except (ValueError, EOFError, OSError) as error:
        raise ArrayFileError(f"{where} is not a numpy array file (.npy): {error}") from None
    raise ArrayFileError(f"{where} uses .npy format version {version[0]}.{version[1]}; save it with numpy's "
                         "default np.save")


def _read_array(handle, spec: Spec, where: str) -> np.ndarray:
    """Header, checks, then exactly the array's bytes from an open binary stream."""
    shape, fortran, dtype = _header(handle, where)
    if dtype.hasobject:
        raise ArrayFileError(f"{where} holds Python objects, which are never loaded; save plain integer codes")
    if dtype.kind not in spec.kinds or dtype.fields is not None:
        raise ArrayFileError(f"{where} holds {dtype} values; expected integer codes")
    if len(shape) not in spec.ndims:
        wanted = " or ".join(str(n) for n in spec.ndims)
        raise ArrayFileError(f"{where} has shape {shape}; expected {wanted} dimension(s)")
    items = math.prod(shape)
    if items > spec.max_items:
        raise ArrayFileError(f"{where} claims shape {shape} ({items} values); at most {spec.max_items} are allowed")
    size = items * dtype.itemsize
    data = handle.read(size)
    if len(data) != size:
        raise ArrayFileError(f"{where} is truncated: {len(data)} of {size} data bytes")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()


def read_npy(path: str | Path, spec: Spec) -> np.ndarray:
    """One array from an .npy file, checked against `spec` before its data is read."""
    path = Path(path)
    if not path.is_file():
        raise ArrayFileError(f"codes file {path}: {not_a_file(path)}")
    with open(path, "rb") as handle:
        array = _read_array(handle, spec, path.name)
        if handle.read(1):
            raise ArrayFileError(f"{path.name} has data after its array; is it an .npy file?")
    return array


def read_npz(path: str | Path, specs: dict[str, Spec], required: tuple[str, ...], what: str) -> dict[str, np.ndarray]:
    """The arrays of an .npz archive, each checked against its spec: members not in `specs` are refused, declared
    sizes are checked before anything is inflated, and the archive's checksums are verified. `what` names the
    kind of file in messages (e.g. "a song bundle saved by this app")."""
    path = Path(path)
    if not path.is_file():
        raise ArrayFileError(f"{path}: {not_a_file(path)}")
    damaged = f"{path.name} is not {what}: it is damaged or truncated, or not an .npz archive"
    arrays = {}
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
            unknown = sorted(set(members) - set(specs))
            if unknown:
                raise ArrayFileError(f"{path.name} is not {what}: it holds unexpected entries ({', '.join(unknown)})")
            missing = [name for name in required if name not in members]
            if missing:
                raise ArrayFileError(f"{path.name} is not {what}: it lacks {', '.join(missing)}")
            for name, info in members.items():
                spec, where = specs[name], f"{path.name} ({name})"
                if info.compress_type not in ZIP_METHODS:
                    raise ArrayFileError(f"{where} is compressed with zip method {info.compress_type}; this app reads "
                                         f"only what numpy writes ({' or '.join(ZIP_METHODS.values())}): save it "
                                         "again with np.savez or np.savez_compressed")
                if info.file_size > HEADER_BYTES + spec.max_items * 8:
                    raise ArrayFileError(f"{where} declares {info.file_size} bytes; at most "
                                         f"{spec.max_items} values are allowed")
                with archive.open(info) as member:
                    handle = _Capped(member, info.file_size, where)
                    arrays[name] = _read_array(handle, spec, where)
                    if handle.read(1):  # also reaches the end, where zipfile checks the CRC
                        raise ArrayFileError(f"{where} has data after its array")
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as error:
        raise ArrayFileError(f"{damaged} ({type(error).__name__})") from None
    except OSError as error:
        raise ArrayFileError(f"{path.name} could not be read: {error.strerror or error}") from None
    return arrays
