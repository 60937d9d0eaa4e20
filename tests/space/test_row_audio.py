"""space/row_audio.py through Service.run: rows heard while a section is made reach the app's process as small
messages with .wav files, before the section is done, and a section cut into GPU calls is heard once, in order."""
import itertools
import pickle
from pathlib import Path

import numpy as np
import soundfile

from bench.bench_stream import counting_batches
from space import gpu_time, serving
from space.handover import MESSAGE_BYTES
from space.jobs import shared_settings
from space.row_audio import ROW_FOLDER, Heard, RowHeard, row_listing, write_row
from space.store import OutputStore
from yue.config import Limits, Stage2Config
from yue.rates import OUTPUT_HOP
from yue.rows import RowAudio
from yue.song import SongCodes

from .helpers import SMALL
from .test_serving import Forked


def piece(start: int, frames: int) -> RowAudio:
    mix = np.linspace(-0.5, 0.5, frames * OUTPUT_HOP, dtype=np.float32)
    return RowAudio(start, frames, mix, mix, mix, low_gain=1.0, provisional=True, during=True)


def test_a_piece_handed_again_is_trimmed_to_what_was_not_heard(tmp_path):
    """A resumed call hands frames 20-60 again after 0-40 were heard: the listener gets 40-60 (the same samples),
    and nothing for a piece heard whole."""
    heard = Heard(1)
    first = write_row(tmp_path, piece(0, 40))
    assert heard.new_part(first) == first
    again = heard.new_part(write_row(tmp_path, piece(20, 40)))
    assert (again.start, again.frames) == (40, 20)
    samples, _ = soundfile.read(again.path, dtype="float32")
    whole, _ = soundfile.read(write_row(tmp_path, piece(20, 40)).path, dtype="float32")
    np.testing.assert_array_equal(samples, whole[20 * OUTPUT_HOP:])
    assert heard.new_part(write_row(tmp_path, piece(10, 30))) is None
    assert len(pickle.dumps(again)) < MESSAGE_BYTES


def rows_of(updates, take: int = 0) -> list[RowHeard]:
    return [u.row for u in updates if u.row is not None and u.row.take == take]


def test_rows_come_before_the_section_and_a_cut_section_is_heard_once_in_order(tmp_path, tiny_dir, monkeypatch):
    """Off ZeroGPU (one call) and on it with calls cut every ~100 clock reads: every row update comes before the
    section's files, the Space's batches of rows (gpu_time.LISTEN_ROWS) are made while stage 1 goes on, the rows join from frame 0 to the song's end without gap or overlap across calls, and joined
    they sound as the finished mix (16-bit files; the mix's loudness is provisional until the song ends); the cut
    run's codes are the uncut run's (rows made while stage 1 went on travel in each call's unfinished state)."""
    from yue import Pipeline
    from yue.weights.loading import load_models

    pipeline = Pipeline(load_models(stage1=tiny_dir / "s1", stage2=tiny_dir / "s2",
                                    codec=tiny_dir / "xcodec_mini_infer"), Stage2Config(chunk_frames=50))
    settings = shared_settings({**SMALL, "sections": 1, "max_new_tokens": 300, "min_new_tokens": 280})
    runs, codes = {}, {}
    for name in ("one call", "cut"):
        if name == "cut":
            monkeypatch.setattr(gpu_time, "on_zero_gpu", lambda: True)
            monkeypatch.setattr(gpu_time, "deadline_seconds", lambda *args: 100.0)
        service = serving.Service(lambda choice: pipeline, OutputStore(tmp_path / name), Limits(),
                                  serving.ModelChoice())
        ticks = itertools.count()
        service.clock, service.check_every = (lambda: float(next(ticks))), 1
        forked = Forked(service)
        updates, audio = [], {}  # a row's file goes with the run's hand-over: read as it comes
        with counting_batches() as batches:
            for update in service.run(service.lyrics_job("pop", "[verse]\nsmall lights", settings), "wav", "s",
                                      forked):
                updates.append(update)
                if update.row is not None:
                    audio[update.row.path] = soundfile.read(update.row.path, dtype="float32")[0]
        if name == "one call":  # the Space's batches (LISTEN_ROWS = 4 rows): row 0 alone, rows 1-2 with the end
            assert gpu_time.LISTEN_ROWS >= 3
            assert [[row.start for row in rows] for _, rows in batches] == [[0, 0]]
        runs[name] = forked.calls
        codes[name] = SongCodes.load(updates[-1].takes[0].bundle)[0]
        first_files = next(number for number, u in enumerate(updates) if u.files)
        rows = rows_of(updates)
        assert rows and all(updates.index(u) < first_files for u in updates if u.row is not None)
        assert [row.start for row in rows] == [0] + list(np.cumsum([row.frames for row in rows])[:-1])
        song, _ = soundfile.read(updates[-1].files[0], dtype="float32")
        joined = np.concatenate([audio[row.path] for row in rows])
        assert not any(Path(path).exists() for path in audio)  # removed with the hand-over
        assert joined.size == song.size
        assert np.abs(joined - song).max() < 0.05 * max(np.abs(song).max(), 1e-3)
    assert runs["one call"] == 1 and runs["cut"] > 2
    np.testing.assert_array_equal(codes["cut"].vocal, codes["one call"].vocal)
    np.testing.assert_array_equal(codes["cut"].instrumental, codes["one call"].instrumental)


def test_with_listening_off_no_row_is_heard_or_written_and_the_song_is_the_same(tmp_path, tiny_dir):
    """The same one-section song (tiny checkpoints, one call) with the visitor listening and not: on, rows come
    and their .wav files are written; off, no RowHeard comes and no row's .wav is ever written in the run's folder
    (looked at after every update), and the song is the same: equal codes, an equal mix."""
    from yue import Pipeline
    from yue.weights.loading import load_models

    pipeline = Pipeline(load_models(stage1=tiny_dir / "s1", stage2=tiny_dir / "s2",
                                    codec=tiny_dir / "xcodec_mini_infer"), Stage2Config(chunk_frames=50))
    songs = {}
    for listen in (True, False):
        root = tmp_path / str(listen)
        settings = shared_settings({**SMALL, "sections": 1, "max_new_tokens": 300, "min_new_tokens": 280,
                                    "listen": listen})
        service = serving.Service(lambda choice: pipeline, OutputStore(root), Limits(), serving.ModelChoice())
        updates, written = [], set()
        for update in service.run(service.lyrics_job("pop", "[verse]\nsmall lights", settings), "wav", "s",
                                  service.run_section):
            updates.append(update)
            written |= {path.name for path in root.rglob("*.wav") if path.parent.name == ROW_FOLDER}
        assert bool(rows_of(updates)) is listen and bool(written) is listen
        last = updates[-1]
        assert last.text.startswith("Done: 1 of 1 sections"), last.text
        songs[listen] = SongCodes.load(last.takes[0].bundle)[0], soundfile.read(last.files[0], dtype="float32")[0]
    (heard, heard_mix), (plain, plain_mix) = songs[True], songs[False]
    np.testing.assert_array_equal(plain.vocal, heard.vocal)
    np.testing.assert_array_equal(plain.instrumental, heard.instrumental)
    np.testing.assert_array_equal(plain_mix, heard_mix)


def test_row_listing_gives_the_pieces_from_a_number_on_whose_files_are_there(tmp_path):
    """Three pieces, the second's file removed: from 0 the first and third (numbered 0 and 2, take and section
    from 1, seconds from frames); from 2 the third only; past the end nothing."""
    rows = [write_row(tmp_path, piece(start, 50)) for start in (0, 50, 100)]
    Path(rows[1].path).unlink()
    files, table = row_listing(rows)
    assert files == [rows[0].path, rows[2].path]
    assert [(r["piece"], r["take"], r["section"], r["start_s"], r["seconds"]) for r in table] == [
        (0, 1, 1, 0.0, 1.0), (2, 1, 1, 2.0, 1.0)]
    assert row_listing(rows, 2)[0] == [rows[2].path] and row_listing(rows, 3) == ([], [])


def test_a_stop_inside_a_section_keeps_its_part_and_continuing_makes_the_uncut_song(tmp_path, tiny_dir):
    """Stop pressed when the first row is heard: the run ends with a bundle of no finished section and the part of
    section 1 made, the text says how to go on, and continuing that bundle (its seed, 1 take)
    makes the codes of a run never stopped."""
    from yue import Pipeline
    from yue.weights.loading import load_models

    pipeline = Pipeline(load_models(stage1=tiny_dir / "s1", stage2=tiny_dir / "s2",
                                    codec=tiny_dir / "xcodec_mini_infer"), Stage2Config(chunk_frames=50))
    settings = shared_settings({**SMALL, "sections": 1, "max_new_tokens": 300, "min_new_tokens": 280})
    service = serving.Service(lambda choice: pipeline, OutputStore(tmp_path), Limits(), serving.ModelChoice())
    lyrics = "[verse]\nsmall lights"
    whole = list(service.run(service.lyrics_job("pop", lyrics, settings), "wav", "s", service.run_section))[-1]
    updates = []
    for update in service.run(service.lyrics_job("pop", lyrics, settings), "wav", "s", service.run_section):
        updates.append(update)
        if update.row is not None:
            service.stops.stop("s")
    ended = updates[-1]
    assert ended.text.startswith("Stopped: 0 of 1 sections.\nKept in the song bundle (.npz) as well: the part of "
                                "section 1"), ended.text
    assert ended.takes[0].bundle.endswith("song-0of1-unfinished.npz") and ended.takes[0].mix is None
    part = SongCodes.load(ended.takes[0].bundle)[0].unfinished
    assert part.section == 0 and part.stage1.step > 0  # stage 1's tokens so far (and rows made whole, if any)
    continued = service.continue_job(ended.takes[0].bundle, None, None, "end", 1, 0, "pop", lyrics, None, settings,
                                     service.encode_tracks)
    last = list(service.run(continued, "wav", "s", service.run_section))[-1]
    assert last.text.startswith("Done: 1 of 1 sections"), last.text
    made, expected = SongCodes.load(last.takes[0].bundle)[0], SongCodes.load(whole.takes[0].bundle)[0]
    np.testing.assert_array_equal(made.vocal, expected.vocal)
    np.testing.assert_array_equal(made.instrumental, expected.instrumental)
    np.testing.assert_array_equal(made.stage1.vocal, expected.stage1.vocal)
