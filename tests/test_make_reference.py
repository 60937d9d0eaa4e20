"""examples/make_reference.py: the reference track the app writes at start-up into its output folder."""
import runpy
import threading
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parents[1]


def write_reference():
    return runpy.run_path(str(ROOT / "examples" / "make_reference.py"))["write_reference"]


def test_a_reader_never_sees_a_partly_written_reference(tmp_path, monkeypatch):
    """Copies of the app sharing a folder write the reference at the same moment (the cause of a failed CI run:
    one copy read the file just as another had truncated it). A new write replaces the file in one step: while the
    new track is written the old one is still there, whole; a reader holding the old file reads all of it; readers
    racing two writers always find a whole wav; no partial file is left."""
    write = write_reference()
    path = write(tmp_path / "reference-example.wav", seconds=2.0)
    whole = path.read_bytes()
    real_write, seen = soundfile.write, []

    def write_and_look(target, *args, **kwargs):  # what a reader finds at `path` once the new samples are out
        real_write(target, *args, **kwargs)
        seen.append(path.read_bytes())

    monkeypatch.setattr(soundfile, "write", write_and_look)
    with open(path, "rb") as held:
        write(path, seconds=1.0)
        assert held.read() == whole  # a write in place (truncate, then fill) would have this handle read the new one
    assert seen == [whole]  # written in place, the new 1 s track would already be there
    monkeypatch.setattr(soundfile, "write", real_write)
    assert soundfile.info(str(path)).frames == 44100
    write(path, seconds=2.0)
    assert path.read_bytes() == whole  # the same track again

    writers = [threading.Thread(target=lambda: [write(path, seconds=2.0) for _ in range(5)]) for _ in range(2)]
    for writer in writers:
        writer.start()
    frames = [soundfile.info(str(path)).frames]
    while any(writer.is_alive() for writer in writers):
        frames.append(soundfile.info(str(path)).frames)
    for writer in writers:
        writer.join()
    assert set(frames) == {2 * 44100}
    assert [p.name for p in tmp_path.iterdir()] == ["reference-example.wav"]


def test_the_reference_is_a_tune_at_44_1_khz_below_full_scale(tmp_path):
    """Mono, 44.1 kHz, the asked length, peak 0.8 (16-bit rounding aside): a usable style reference, not silence."""
    audio, rate = soundfile.read(str(write_reference()(tmp_path / "r.wav", seconds=3.0)))
    assert rate == 44100 and audio.ndim == 1 and audio.size == 3 * 44100
    assert abs(np.abs(audio).max() - 0.8) < 1e-3 and audio.std() > 0.05
