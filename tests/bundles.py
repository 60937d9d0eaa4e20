"""Song bundles for tests and benches: a consistent one of any size, and hostile zip layouts built from a real one."""
import io
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from yue.arrays import ArrayFileError
from yue.lm.stage1 import Stage1Tokens
from yue.song import SongCodes


def song(frames=(3, 2), stage2: bool = True, seed: int = 0) -> SongCodes:
    """A song whose fields agree as the pipeline makes them: sections adding up to the tracks, and stage-2 codes
    (8, T) whose codebook 0 is the stage-1 codes."""
    total = sum(frames)
    rng = np.random.default_rng(seed)
    vocal, instrumental = rng.integers(0, 1024, (2, total))
    tokens = Stage1Tokens(vocal, instrumental, tuple(frames), tuple(f"s{i}" for i in range(len(frames))))
    if not stage2:
        return SongCodes(tokens)
    filled = rng.integers(0, 1024, (2, 8, total))
    filled[0, 0], filled[1, 0] = vocal, instrumental
    return SongCodes(tokens, filled[0], filled[1])


def with_stage2(rows: int, frames=(3, 2)) -> SongCodes:
    """A song whose stage-2 codes have `rows` codebooks (8 is right), codebook 0 its stage-1 codes."""
    good = song(frames)
    vocal = np.resize(good.vocal, (rows, good.frames))
    vocal[0] = good.stage1.vocal
    return SongCodes(good.stage1, vocal, np.resize(good.instrumental, (rows, good.frames)))


def listed_many_times(path: Path, copies: int) -> Path:
    """A real bundle whose zip directory lists each of its members `copies` times (zip64 end records once the count
    passes 65 535), every entry pointing at the same data: a valid archive, mostly directory (the fourth campaign's
    47.6 MB file is `copies=130_000`)."""
    data = song().save(path).read_bytes()
    entries, directory_size, directory_at = struct.unpack("<10xH2L2x", data[-22:])  # numpy writes no comment
    directory = data[directory_at:directory_at + directory_size]
    count, size = entries * copies, directory_size * copies
    zip64_at = directory_at + size
    with open(path, "wb") as handle:
        handle.write(data[:directory_at])
        for _ in range(copies):
            handle.write(directory)
        handle.write(struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, directory_at))
        handle.write(struct.pack("<4sLQL", b"PK\x06\x07", 0, zip64_at, 1))
        handle.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, min(count, 0xFFFF), min(count, 0xFFFF), size,
                                 directory_at, 0))
    return path


def npy_bytes(shape, descr="<i8", data=b"") -> bytes:
    """An .npy header claiming `shape`, followed by `data` (as much or as little as a hostile file holds)."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue() + data


def bundle_with(path, replace: dict, compression=zipfile.ZIP_DEFLATED):
    """A real bundle's members, some replaced by raw bytes (name -> bytes, or None to drop it)."""
    saved = song().save(path.with_suffix(".orig.npz"), {"seed": 1})
    with zipfile.ZipFile(saved) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    for name, data in replace.items():
        if data is None:
            members.pop(name)
        else:
            members[name] = data
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def meta(**fields) -> bytes:
    text = json.dumps({"version": 1, "labels": ["s0", "s1"], "settings": {}, **fields}).encode()
    buffer = io.BytesIO()
    np.save(buffer, np.frombuffer(text, dtype=np.uint8))
    return buffer.getvalue()


def refused(path) -> str:
    with pytest.raises(ArrayFileError) as error:
        SongCodes.load(path)
    message = str(error.value)
    assert path.name in message and "allow_pickle" not in message
    return message


def raw_meta(text: str) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.frombuffer(text.encode(), dtype=np.uint8))
    return buffer.getvalue()
