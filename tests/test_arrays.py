"""yue.arrays and song bundles: damaged, lying or hostile .npy/.npz files are refused from their headers, with a
message naming the file, before any large read or inflate; pickles are never loaded."""
import io
import json
import struct
import zipfile

import numpy as np
import pytest

from yue.arrays import EXTRA_ENTRIES, ArrayFileError, Spec, read_npy, read_npz
from yue.bundle import BUNDLE_SPECS
from yue.song import SongCodes
from yue.lm.stage1 import Stage1Tokens

from .bundles import bundle_with, listed_many_times, meta, npy_bytes, raw_meta, refused, song
from .memory import peak_growth_mb

CODES = Spec((1, 2), 1000)


def test_a_saved_bundle_loads_back_exactly(tmp_path):
    saved = song()
    codes, settings = SongCodes.load(saved.save(tmp_path / "s.npz", {"seed": 5, "mode": "icl", "language": "zh"}))
    assert settings == {"seed": 5, "mode": "icl", "language": "zh"} and codes.stage1.section_frames == (3, 2)
    np.testing.assert_array_equal(codes.instrumental, saved.instrumental)


def test_saving_a_bundle_makes_its_folder(tmp_path):
    """As the README's Python block does after only `python -m yue tiny tiny`: out/ does not exist yet."""
    path = song().save(tmp_path / "out" / "song.npz", {"seed": 5})
    assert SongCodes.load(path)[1] == {"seed": 5}


def test_a_truncated_bundle_is_damaged_not_a_traceback(tmp_path):
    data = song().save(tmp_path / "s.npz").read_bytes()
    for size in (len(data) // 2, len(data) - 30, 10):
        cut = tmp_path / "cut.npz"
        cut.write_bytes(data[:size])
        assert "is damaged or truncated" in refused(cut)


def test_a_header_claiming_a_huge_array_is_refused_before_any_read(tmp_path):
    """The issue's (10**13,) array: refused from its header; nothing near 72 TiB is allocated."""
    path = bundle_with(tmp_path / "big.npz", {"stage1_vocal.npy": npy_bytes((10**13,), data=b"\0" * 64)})
    assert "claims shape (10000000000000,)" in refused(path)


def test_a_compressed_member_that_would_inflate_hugely_is_refused_from_its_declared_size(tmp_path):
    """A few KB of deflated zeros declaring 40 MB: refused before anything is inflated."""
    big = io.BytesIO()
    np.save(big, np.zeros(5_000_000, dtype=np.int64))
    path = bundle_with(tmp_path / "bomb.npz", {"stage1_vocal.npy": big.getvalue()})
    assert path.stat().st_size < 200_000
    assert "declares 40000128 bytes" in refused(path)


@pytest.mark.parametrize("member, data, message", [
    ("stage1_vocal.npy", npy_bytes((3,), "|O", b"\0" * 24), "holds Python objects, which are never loaded"),
    ("stage1_vocal.npy", npy_bytes((5,), "<f8", b"\0" * 40), "holds float64 values; expected integer codes"),
    ("stage1_vocal.npy", npy_bytes((5,), "<i8", b"\0" * 8), "is truncated: 8 of 40 data bytes"),
    ("stage1_vocal.npy", npy_bytes((5, 1), "<i8", b"\0" * 40), "has shape (5, 1); expected 1 dimension(s)"),
    ("stage1_vocal.npy", b"not an npy file at all", "is not a numpy array file"),
    ("evil.pkl", b"\x80\x04K\x01.", "holds unexpected entries (evil.pkl)"),
    ("section_frames.npy", None, "it lacks section_frames"),
    ("meta.npy", meta(version=2), "is a bundle of version 2; this app reads version 1"),
    ("meta.npy", meta(settings={"mode": "karaoke"}), "its mode 'karaoke' is not one of cot, icl"),
    ("meta.npy", meta(settings={"language": "fr"}), "its language 'fr' is not one of en, zh, jp-kr"),
    ("meta.npy", meta(labels=["one"]), "1 section labels for 2 sections"),
    ("meta.npy", meta(labels=["s0", "s 1"]), "its settings or section labels are malformed"),
    ("meta.npy", meta(settings={"lyrics": 5}), "its setting 'lyrics' must be text; got 5 (int)"),
    ("meta.npy", meta(settings={"genres": ["pop"]}), "its setting 'genres' must be text; got ['pop'] (list)"),
    ("meta.npy", meta(settings={"seed": "7"}), "its setting 'seed' must be a whole number or null; got '7'"),
    ("meta.npy", meta(settings={"take": True}), "its setting 'take' must be a whole number; got True (bool)"),
    ("meta.npy", meta(settings={"sampling": 1.5}), "its setting 'sampling' must be an object; got 1.5"),
])
def test_bad_members_are_refused_with_what_is_wrong(tmp_path, member, data, message):
    assert message in refused(bundle_with(tmp_path / "bad.npz", {member: data}))


def test_codes_outside_the_codebook_and_negative_sections_are_refused(tmp_path):
    bad = song()
    out_of_range = SongCodes(bad.stage1, np.full((8, 5), 5000), bad.instrumental)
    assert "must lie in 0..1023; got 5000..5000" in refused(out_of_range.save(tmp_path / "range.npz"))
    negative = SongCodes(Stage1Tokens(bad.stage1.vocal, bad.stage1.instrumental, (7, -2), ("a", "b")))
    assert "its section lengths (section_frames) must lie in 0..49152; got -2..7" in refused(
        negative.save(tmp_path / "negative.npz"))


def test_read_npy_checks_the_header_first(tmp_path):
    good, huge, pickled = tmp_path / "good.npy", tmp_path / "huge.npy", tmp_path / "obj.npy"
    np.save(good, np.arange(12).reshape(2, 6))
    huge.write_bytes(npy_bytes((10**9, 8)))
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.testing.assert_array_equal(read_npy(good, CODES), np.arange(12).reshape(2, 6))
    with pytest.raises(ArrayFileError, match=r"huge.npy claims shape \(1000000000, 8\) \(8000000000 values\); at "
                                             "most 1000 are allowed"):
        read_npy(huge, CODES)
    with pytest.raises(ArrayFileError, match="obj.npy holds Python objects, which are never loaded"):
        read_npy(pickled, CODES)
    with pytest.raises(ArrayFileError, match="codes file .*missing.npy: file not found"):
        read_npy(tmp_path / "missing.npy", CODES)


def test_read_npz_refuses_a_file_that_is_not_a_zip(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ArrayFileError, match="junk.npz is not codes: it is damaged or truncated"):
        read_npz(junk, {"a": CODES}, ("a",), "codes")


def lying_bomb(path, method: int, inflated: int, member: str = "vocal.npy"):
    """A real bundle whose `member` is a valid (8, 5) array followed by `inflated` zero bytes, compressed with zip
    `method`, its declared size patched to the array's true size (as a hostile file does): the declared-size check
    passes, and only the reader can stop the inflate. Written in 16 MB pieces, so building it costs little memory."""
    small = io.BytesIO()
    np.save(small, np.zeros((8, 5), dtype=np.int64))
    bundle_with(path, {member: None})
    info = zipfile.ZipInfo(member)
    info.compress_type = method
    with zipfile.ZipFile(path, "a") as archive, archive.open(info, "w") as handle:
        handle.write(small.getvalue())
        for _ in range(inflated >> 24):
            handle.write(bytes(1 << 24))
    data = bytearray(path.read_bytes())
    name = member.encode()
    for signature, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local header, central directory
        start = 0
        while (start := data.find(signature, start)) >= 0:
            name_at = start + (30 if size_at == 22 else 46)
            if data[name_at:name_at + len(name)] == name:
                struct.pack_into("<I", data, start + size_at, len(small.getvalue()))
            start += 4
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_members_compressed_with_other_methods_than_numpy_writes_are_refused(tmp_path, method):
    """bzip2 and lzma members are refused by their zip method, before anything is inflated: Python's zipfile
    inflates them with no cap (the issue's 11 KB bzip2 bundle became 2 GB per upload)."""
    message = refused(lying_bomb(tmp_path / "bomb.npz", method, 1 << 24))
    assert f"compressed with zip method {method}" in message and "stored or deflate" in message


def test_a_deflated_member_holding_more_than_it_declares_stops_at_its_declared_size(tmp_path):
    """A deflate member whose directory lies about its size is cut at the declared size and refused as damaged (its
    checksum is that of the whole data) without inflating the rest."""
    assert "damaged or truncated" in refused(lying_bomb(tmp_path / "bomb.npz", zipfile.ZIP_DEFLATED, 1 << 24))


BUNDLE_PEAK_MB = 64  # docs/bad-inputs.md: reading any bundle raises a process's peak memory by at most this


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_DEFLATED])
def test_a_bomb_bundle_raises_peak_memory_by_less_than_the_stated_bound(tmp_path, method):
    """The issue's bomb (a lying bzip2 member inflating to 400 MB here, 2 GB there), and the same lie deflated:
    loading it in a fresh process raises its peak RSS by less than BUNDLE_PEAK_MB, and it is refused."""
    path = lying_bomb(tmp_path / "bomb.npz", method, 400 << 20)
    assert path.stat().st_size < 1_000_000
    growth, outcome = peak_growth_mb("from yue.song import SongCodes", f"SongCodes.load({str(path)!r})")
    assert outcome.startswith("ArrayFileError") and "bomb.npz" in outcome
    assert growth < BUNDLE_PEAK_MB, f"peak RSS grew by {growth:.0f} MB"


@pytest.mark.parametrize("text, message", [
    ("[1, 2]", "its metadata is a JSON list, not the object (version, labels, settings) this app writes"),
    ("[" * 100_000 + "]" * 100_000, "its settings are not readable JSON"),
])
def test_metadata_that_is_no_object_or_nested_too_deep_is_named(tmp_path, text, message):
    """A list as metadata is said to be one (was 'a bundle of version None'); JSON nested 100 000 deep is unreadable
    settings of the named file (was 'maximum recursion depth exceeded', no file named)."""
    assert message in refused(bundle_with(tmp_path / "odd.npz", {"meta.npy": raw_meta(text)}))


def test_the_largest_bundle_this_app_writes_loads_under_the_same_bound(tmp_path):
    """A real bundle at the limits (12 sections of 4096 frames, both stage-2 tracks) loads within BUNDLE_PEAK_MB."""
    from yue.bundle import MAX_SONG_FRAMES

    path = song((MAX_SONG_FRAMES // 12,) * 12).save(tmp_path / "big.npz")
    growth, outcome = peak_growth_mb("from yue.song import SongCodes", f"SongCodes.load({str(path)!r})")
    assert outcome == "returned" and growth < BUNDLE_PEAK_MB, (growth, outcome)


def test_a_directory_listing_the_members_many_times_is_refused_before_it_is_read(tmp_path):
    """Defect 4: a valid bundle whose directory lists its 6 members 130 000 times (47.6 MB) took 9.5 s and +414 MB,
    and was accepted. Its end records are read first: refused by its size, naming the count."""
    path = listed_many_times(tmp_path / "many.npz", 20_000)
    message = refused(path)
    assert "its zip directory lists 120000 entries in" in message and f"at most {len(BUNDLE_SPECS) + EXTRA_ENTRIES} entries" in message


def test_the_campaigns_directory_raises_peak_memory_by_less_than_the_stated_bound(tmp_path):
    """The campaign's own file (780 000 entries): refused within BUNDLE_PEAK_MB (it raised the peak by ~414 MB)."""
    path = listed_many_times(tmp_path / "many.npz", 130_000)
    assert path.stat().st_size > 45e6
    growth, outcome = peak_growth_mb("from yue.song import SongCodes", f"SongCodes.load({str(path)!r})")
    assert outcome.startswith("ArrayFileError") and "780000 entries" in outcome
    assert growth < BUNDLE_PEAK_MB, f"peak RSS grew by {growth:.0f} MB"


def test_a_member_listed_twice_is_refused(tmp_path):
    """A few entries more are named: a member listed twice (zipfile keeps the last, silently) is refused."""
    path = listed_many_times(tmp_path / "twice.npz", 2)
    assert "its zip directory lists instrumental, meta, section_frames, stage1_instrumental, stage1_vocal, vocal more "\
           "than once" in refused(path)


def test_an_encrypted_member_gets_the_bundle_errors_type_and_names_the_file(tmp_path):
    """Defect 5: a member flagged as encrypted raised a bare RuntimeError naming a ZipInfo repr."""
    data = bytearray(song().save(tmp_path / "locked.npz").read_bytes())
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # local headers, directory entries
        start = 0
        while (start := data.find(signature, start)) >= 0:
            data[start + flags_at] |= 0x1
            start += 4
    (tmp_path / "locked.npz").write_bytes(bytes(data))
    message = refused(tmp_path / "locked.npz")
    assert "locked.npz (" in message and "is encrypted" in message and "ZipInfo" not in message


@pytest.mark.parametrize("header", [
    "{'descr': '<i8', 'fortran_order': False, 'shape': f(), }",
    "{'descr': '<i8', 'fortran_order': False, 'shape': " + "(" * 300 + ")" * 300 + ", }",
    "not a dict at all",
])
def test_a_crafted_npy_header_is_refused_without_the_parsers_internals(tmp_path, header):
    """Weak answer 7: numpy's parser answered "malformed node or string on line 1: <ast.Call object at 0x…>"."""
    text = header.ljust(118) + "\n"
    path = tmp_path / "crafted.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode())
    with pytest.raises(ArrayFileError) as error:
        read_npy(path, CODES)
    message = str(error.value)
    assert message.startswith("crafted.npy is not a numpy array file (.npy): its header is not one numpy writes")
    assert "ast." not in message and "0x" not in message
