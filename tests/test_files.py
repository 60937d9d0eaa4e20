"""yue.files: outputs are written whole or not at all, and a place that cannot be written is named before work."""
import os

import numpy as np
import pytest

from yue.files import replacing, writable_folder


def test_a_finished_write_replaces_the_file_in_one_step(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with replacing(target) as temporary:
        assert temporary.parent == tmp_path and temporary.suffix == ".json" and target.read_text() == "old"
        temporary.write_text("new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["out.json"]


def test_a_failed_write_leaves_neither_a_partial_file_nor_its_temporary(tmp_path):
    """A write error half-way (a full disk) leaves the old file as it was, or no file at all; nothing else."""
    for old in ("old", None):
        (tmp_path / str(old)).mkdir()
        target = tmp_path / str(old) / "song.wav"
        if old:
            target.write_text(old)
        with pytest.raises(OSError):
            with replacing(target) as temporary:
                temporary.write_bytes(b"half a song")
                raise OSError(28, "No space left on device")
        assert (target.read_text() if target.exists() else None) == old
        assert os.listdir(target.parent) == (["song.wav"] if old else [])


def test_audio_and_bundle_writers_leave_no_partial_file(tmp_path, monkeypatch):
    """write_audio and SongCodes.save go through `replacing`: an error inside the writer leaves nothing."""
    import soundfile

    from yue.audio import write_audio

    def broken(path, *args, **kwargs):
        open(path, "wb").write(b"RIFF")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(soundfile, "write", broken)
    with pytest.raises(OSError):
        write_audio(tmp_path / "mix.wav", np.zeros(100), 44100)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("where, message", [
    ("/proc/yue-out", "cannot write in /proc"),
    ("{tmp}/file.txt/song", "file.txt is not a folder"),
    ("{tmp}/caf\udce9", "the name holds bytes that are not UTF-8 text"),
])
def test_a_place_that_cannot_be_written_is_named(tmp_path, where, message):
    """/proc (writable by its mode bits for root), a file where a folder should be, a name that is not UTF-8."""
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match=message):
        writable_folder(where.replace("{tmp}", str(tmp_path)), "--out X")
    writable_folder(tmp_path / "new" / "deeper", "--out X")  # a folder still to make, in a writable one


def test_a_replaced_file_gets_the_usual_permissions(tmp_path):
    """The temporary file is made by the writer, so the result has the permissions any new file gets (umask), not
    the owner-only 0600 of a mkstemp file."""
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    with replacing(tmp_path / "out.txt") as temporary:
        temporary.write_text("y")
    assert (tmp_path / "out.txt").stat().st_mode == plain.stat().st_mode
