"""Reading .npy and .npz files given by users without trusting them.

`np.load` reads a header that may claim any shape (an .npz of a few KB can claim a 70 TiB array, or inflate to
gigabytes), and the zip layer fails with tracebacks on a truncated file. Here every array's header (dtype, shape,
byte count) and every zip member's declared size are checked against what the caller expects before a byte of
data is read or inflated, at most that many bytes are ever inflated, and Python objects (pickles) are never loaded.
Only the zip methods numpy writes are read (stored and deflate): Python's zipfile inflates a bzip2 or lzma member
with no cap on the output of one read (an 11 KB bzip2 member can become 2 GB at once), while its deflate reads stop
at the size asked for, and `_Capped` stops any member at its declared size. The zip directory itself is bounded
before zipfile reads it (`_directory_size`): it may list each expected member once, not hundreds of thousands of
times (a 47.6 MB directory took 10 s and 414 MB to parse).
"""
from __future__ import annotations

import math
import struct
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
# A directory entry numpy writes is ~60 bytes (46 fixed, the name, a zip64 extra): 1 KB leaves room for any
# writer's extras and comments, and bounds a directory to a few KB
DIRECTORY_ENTRY_BYTES = 1024
# Entries a directory may list beyond the expected members, so that a few extra ones are named (unexpected, listed
# twice) rather than refused by their count
EXTRA_ENTRIES = 16
END_RECORD = struct.Struct("<4s4H2LH")  # the zip end of central directory record (22 bytes)
ZIP64_LOCATOR, ZIP64_END = struct.Struct("<4sLQL"), struct.Struct("<4sQ2H2L4Q")  # 20 and 56 bytes


class ArrayFileError(ValueError):
    """A code file or bundle that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Spec:
    """What one array may be: its number of dimensions, its dtype kinds (numpy's letters: "iu" = integers) and at
    most how many elements it holds; for the arrays of one archive (`check_arrays`) also each dimension's size (a
    number, or a name every array with that name agrees on), the range its values lie in, its name in words and
    whether it may be left out."""

    ndims: tuple[int, ...]
    max_items: int
    kinds: str = "iu"
    dims: tuple[int | str, ...] = ()  # e.g. (8, "frames"); () = any sizes
    values: tuple[int, int] | None = None  # lowest and highest value allowed
    what: str = ""
    optional: bool = False


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
    except (ValueError, SyntaxError, TypeError, RecursionError, EOFError, OSError):
        # numpy's own words would name its parser's internals ("malformed node or string: <ast.Call object …>")
        raise ArrayFileError(f"{where} is not a numpy array file (.npy): its header is not one numpy writes; save "
                             "the array with np.save") from None
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
    try:
        with open(path, "rb") as file:
            _check_directory(file, len(specs) + EXTRA_ENTRIES, path.name, what)
            with zipfile.ZipFile(file) as archive:
                members = _members(archive, specs, required, path.name, what)
                return {name: _read_member(archive, info, specs[name], f"{path.name} ({name})")
                        for name, info in members.items()}
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as error:
        raise ArrayFileError(f"{damaged} ({type(error).__name__})") from None
    except OSError as error:
        raise ArrayFileError(f"{path.name} could not be read: {error.strerror or error}") from None


def _members(archive: zipfile.ZipFile, specs: dict[str, Spec], required: tuple[str, ...], name: str,
             what: str) -> dict[str, zipfile.ZipInfo]:
    """The archive's entries by array name: each listed once, each one of `specs`, every `required` one there."""
    names = [info.filename.removesuffix(".npy") for info in archive.infolist()]
    twice = sorted({entry for entry in names if names.count(entry) > 1})
    if twice:
        raise ArrayFileError(f"{name} is not {what}: its zip directory lists {', '.join(twice)} more than once")
    members = dict(zip(names, archive.infolist()))
    unknown = sorted(set(members) - set(specs))
    if unknown:
        raise ArrayFileError(f"{name} is not {what}: it holds unexpected entries ({', '.join(unknown)})")
    missing = [entry for entry in required if entry not in members]
    if missing:
        raise ArrayFileError(f"{name} is not {what}: it lacks {', '.join(missing)}")
    return members


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, spec: Spec, where: str) -> np.ndarray:
    """One member's array: its zip method, encryption and declared size checked before anything is inflated, and
    never more inflated than it declares."""
    if info.compress_type not in ZIP_METHODS:
        raise ArrayFileError(f"{where} is compressed with zip method {info.compress_type}; this app reads only what "
                             f"numpy writes ({' or '.join(ZIP_METHODS.values())}): save it again with np.savez or "
                             "np.savez_compressed")
    if info.flag_bits & 0x1:  # zipfile would ask for a password (a RuntimeError naming a ZipInfo)
        raise ArrayFileError(f"{where} is encrypted; this app reads only what numpy writes, without a password")
    if info.file_size > HEADER_BYTES + spec.max_items * 8:
        raise ArrayFileError(f"{where} declares {info.file_size} bytes; at most {spec.max_items} values are allowed")
    with archive.open(info) as member:
        handle = _Capped(member, info.file_size, where)
        array = _read_array(handle, spec, where)
        if handle.read(1):  # also reaches the end, where zipfile checks the CRC
            raise ArrayFileError(f"{where} has data after its array")
    return array


def _check_directory(handle, most: int, name: str, what: str) -> None:
    """Refuse a zip file (`handle`, open) unless its directory lists at most `most` entries in at most `most` x
    DIRECTORY_ENTRY_BYTES bytes, read from the end records as zipfile finds them (its search for the end record,
    then the zip64 records just before it). zipfile itself reads and parses the whole directory, whatever its size,
    before any check could run. A file without an end record is left to zipfile, which calls it damaged."""
    end = handle.seek(0, 2)
    at = end - END_RECORD.size
    handle.seek(max(at, 0))
    record = handle.read()
    if not (record[:4] == zipfile.stringEndArchive and record[-2:] == b"\0\0"):  # a comment follows the record
        start = max(end - (1 << 16) - END_RECORD.size, 0)
        handle.seek(start)
        tail = handle.read()
        found = tail.rfind(zipfile.stringEndArchive)
        if found < 0:
            return
        at, record = start + found, tail[found:found + END_RECORD.size]
    if len(record) != END_RECORD.size:
        return
    entries, size = END_RECORD.unpack(record)[4:6]
    if at >= ZIP64_LOCATOR.size + ZIP64_END.size:
        handle.seek(at - ZIP64_LOCATOR.size)
        if ZIP64_LOCATOR.unpack(handle.read(ZIP64_LOCATOR.size))[0] == zipfile.stringEndArchive64Locator:
            handle.seek(at - ZIP64_LOCATOR.size - ZIP64_END.size)
            zip64 = ZIP64_END.unpack(handle.read(ZIP64_END.size))
            if zip64[0] == zipfile.stringEndArchive64:
                entries, size = zip64[7], zip64[8]
    if entries > most or size > most * DIRECTORY_ENTRY_BYTES:
        raise ArrayFileError(f"{name} is not {what}: its zip directory lists {entries} entries in {size} bytes; "
                             f"at most {most} entries in {most * DIRECTORY_ENTRY_BYTES} bytes are read")


def check_arrays(arrays: dict, specs: dict[str, Spec], where: str) -> dict[str, int]:
    """The arrays of one archive (name -> array; an absent one is not checked) against their specs: dimensions,
    dtype, count, each dimension's size (arrays sharing a named size must agree on it) and the values' range.
    Returns the named sizes; raises ArrayFileError naming `where`, the array and what was expected."""
    sizes, named_by = {}, {}
    for name, spec in specs.items():
        if name not in arrays:
            continue
        array, what = np.asarray(arrays[name]), spec.what or name
        if array.ndim not in spec.ndims or array.dtype.kind not in spec.kinds or array.size > spec.max_items:
            wanted = " or ".join(str(n) for n in spec.ndims)
            raise ArrayFileError(f"{where}: its {what} must be integers with {wanted} dimension(s), at most "
                                 f"{spec.max_items} values; got {array.dtype} {array.shape}")
        for size, wanted in zip(array.shape, spec.dims):
            if isinstance(wanted, int) and size != wanted:
                raise ArrayFileError(f"{where}: its {what} have shape {array.shape}; expected "
                                     f"({', '.join(map(str, spec.dims))})")
            if isinstance(wanted, str) and sizes.setdefault(wanted, size) != size:
                raise ArrayFileError(f"{where}: its {what} have {size} {wanted}, its {named_by[wanted]} "
                                     f"{sizes[wanted]}")
            named_by.setdefault(wanted, what)
        if spec.values is not None and array.size and (array.min() < spec.values[0] or array.max() > spec.values[1]):
            raise ArrayFileError(f"{where}: its {what} must lie in {spec.values[0]}..{spec.values[1]}; got "
                                 f"{array.min()}..{array.max()}")
    return sizes
