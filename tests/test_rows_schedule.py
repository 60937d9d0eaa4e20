"""yue.rows' schedule of stage-2 batches while stage 1 makes a section (`stream_takes(listen_rows=)`): the section's
first row alone, then `listen_rows` rows at a time; the same song as a plain run, the batches `listen_batches`
counts, the first sound still inside the section, the same batches however the run is cut, and bad values refused."""
from dataclasses import replace

import numpy as np
import pytest

from yue import Cancelled, Pipeline, Sampling, SongRequest
from yue.config import Stage2Config
from yue.rows import batch_end, listen_batches
from yue.weights.loading import load_models

from bench.bench_stream import counting_batches
from tests.lm.test_deadline import random_calls
from tests.test_pipeline_deadline import made_in_cut_calls
from tests.test_rows import joined

CHUNK = 50
ROWS = Stage2Config(chunk_frames=CHUNK)
# 190 frames a section, never ended early (<EOA> is banned until the last step): stage 1 finishes 3 whole rows of
# section 1 and 4 of section 2 (its first the partial row [150, 200) grown from section 1) before its last step
SAMPLING = Sampling(max_new_tokens=380, min_new_tokens=380)
REQUEST = SongRequest("pop", "[verse]\nhello there\n\n[chorus]\nla la la", "all", sampling=SAMPLING, seed=5)


def pipeline_at(tiny_dir, precision: str = "fp32") -> Pipeline:
    return Pipeline(load_models(stage1=tiny_dir / "s1", stage2=tiny_dir / "s2", codec=tiny_dir / "xcodec_mini_infer",
                                precision=precision), ROWS)


@pytest.fixture(scope="module")
def fp32(tiny_dir):
    return pipeline_at(tiny_dir)


@pytest.fixture(scope="module")
def plain(tiny_dir, fp32):
    """The song of a run without listening, per precision (made once)."""
    songs = {}

    def song(precision: str):
        if precision not in songs:
            pipeline = fp32 if precision == "fp32" else pipeline_at(tiny_dir, precision)
            songs[precision] = pipeline, list(pipeline.stream_takes(REQUEST))[-1][0]
        return songs[precision]
    return song


@pytest.fixture
def batches():
    """The stage-2 batches run while stage 1 goes on, as (section, rows) each, in order."""
    with counting_batches() as made:
        yield made


def rows_during(before: int, frames: int) -> int:
    """Whole rows of a section that stage 1 finishes before its last decode step (which makes its last frame): rows
    from the last whole row before the section (a partial row there is made again)."""
    return (before + frames - 1 - before // CHUNK * CHUNK) // CHUNK


def scheduled(before: int, frames: int, listen_rows: int) -> list[list[int]]:
    """The rows (0-based in the section) of each batch the schedule makes while stage 1 makes a section of `frames`
    frames after `before` (`batch_end`): every batch whose last row stage 1 finishes before its last step."""
    rows = rows_during(before, frames)
    ends = sorted({batch_end(row, listen_rows) for row in range(rows)})
    return [[row for row in range(rows) if batch_end(row, listen_rows) == last] for last in ends if last < rows]


def expected_batches(song, listen_rows: int) -> list[tuple[int, list[int]]]:
    """(section, its rows in one batch) of every batch the schedule makes while stage 1 goes on, in order."""
    ends = np.cumsum((0, *song.codes.stage1.section_frames))
    return [(section, rows) for section, (before, after) in enumerate(zip(ends[:-1], ends[1:]))
            for rows in scheduled(int(before), int(after - before), listen_rows)]


def section_rows(song, section: int, rows) -> list[int]:
    """The section's rows (0-based, from its first whole row) among `rows`, each checked to hold both tracks."""
    first = int(sum(song.codes.stage1.section_frames[:section])) // CHUNK * CHUNK
    starts = sorted({row.start for row in rows})
    assert sorted((row.track, row.start) for row in rows) == [(track, start) for track in (0, 1) for start in starts]
    return [(start - first) // CHUNK for start in starts]


@pytest.mark.parametrize("listen_rows, precision", [(1, "fp32"), (2, "fp32"), (3, "fp32"), (99, "fp32"),
                                                    (2, "bf16")])
def test_batched_rows_make_the_plain_song_in_the_scheduled_batches(plain, batches, listen_rows, precision):
    """listen_rows 1, 2, 3 and 99 (fp32 on the CPU; 2 in bf16 too): codes and the finished song's audio equal a plain
    run's, the pieces joined are its stems; the batches run during stage 1 are the section's first row alone and then
    `listen_rows` rows (both tracks each), as many as `listen_batches` counts (rows of a batch stage 1 does not finish
    go with the section's end); the first piece is heard while stage 1 of section 1 goes on."""
    pipeline, plain = plain(precision)
    pieces, before = [], []
    for songs in pipeline.stream_takes(REQUEST, on_row=pieces.append, listen_rows=listen_rows):
        before.append(len(pieces))
    song = songs[0]
    np.testing.assert_array_equal(song.codes.vocal, plain.codes.vocal)
    np.testing.assert_array_equal(song.codes.instrumental, plain.codes.instrumental)
    np.testing.assert_array_equal(song.mix, plain.mix)
    audio = joined(pieces)
    np.testing.assert_allclose(audio["vocal"], song.vocal, atol=1e-5)
    np.testing.assert_allclose(audio["instrumental"], song.instrumental, atol=1e-5)
    made = [(section, section_rows(song, section, rows)) for section, rows in batches]
    assert made == expected_batches(song, listen_rows)
    for section, frames in enumerate(song.codes.stage1.section_frames):
        start = int(sum(song.codes.stage1.section_frames[:section]))
        assert sum(1 for s, _ in made if s == section) == listen_batches(rows_during(start, frames), listen_rows)
    assert pieces[0].during and (pieces[0].section, pieces[0].row) == (0, 0) and before[0] > 0


def test_takes_of_songs_of_other_lengths_batch_each_take_by_its_own_rows(fp32, batches):
    """Two takes continuing their own songs of 190 and 118 frames (their rows end at other steps), listen_rows 2: the
    codes and audio equal a plain continuation's, each batch holds one take's rows, and each take's rows are batched
    by its own schedule (its first row, the partial one grown, alone; then 2 at a time), as listen_batches counts."""
    first = SongRequest("pop", REQUEST.lyrics, 1, sampling=Sampling(max_new_tokens=380, min_new_tokens=200), seed=5,
                        takes=2)
    songs = list(fp32.stream_takes(first))[-1]
    assert [song.codes.frames for song in songs] == [190, 118]
    request, previous = replace(first, segments=2, sampling=SAMPLING), [song.codes for song in songs]
    states = [song.render_state for song in songs]
    plain = list(fp32.stream_takes(request, previous=previous, render_states=states))[-1]
    batches.clear()
    made = list(fp32.stream_takes(request, previous=previous, render_states=states, on_row=lambda piece: None,
                                  listen_rows=2))[-1]
    for ours, theirs in zip(made, plain):
        np.testing.assert_array_equal(ours.codes.vocal, theirs.codes.vocal)
        np.testing.assert_array_equal(ours.codes.instrumental, theirs.codes.instrumental)
        np.testing.assert_array_equal(ours.mix, theirs.mix)
    assert all(len({row.track // 2 for row in rows}) == 1 for _, rows in batches)
    for take, song in enumerate(songs):
        first_row = song.codes.frames // CHUNK * CHUNK
        mine = [sorted({(row.start - first_row) // CHUNK for row in rows}) for _, rows in batches
                if rows[0].track // 2 == take]
        assert mine == scheduled(song.codes.frames, SAMPLING.max_new_tokens // 2, 2) == [[0], [1, 2]]
    assert len(batches) == sum(listen_batches(rows_during(song.codes.frames, 190), 2) for song in songs)


def test_the_schedule_counts_a_first_row_then_groups():
    """listen_batches: 0 rows none; the first row alone, then a batch per `listen_rows` whole rows (an incomplete
    group is not counted); 1 is a batch per row."""
    assert [listen_batches(rows, 2) for rows in range(7)] == [0, 1, 1, 2, 2, 3, 3]
    assert [listen_batches(rows, 1) for rows in range(5)] == [0, 1, 2, 3, 4]
    assert listen_batches(30, 99) == 1 and listen_batches(10, 5) == 2
    assert [batch_end(row, 3) for row in range(8)] == [0, 3, 3, 3, 6, 6, 6, 9]


def test_a_run_cut_at_random_steps_makes_the_batches_and_song_of_an_uncut_one(fp32, batches):
    """listen_rows 2, each section made in calls that stop at random steps (every third killed and resumed from the
    last state it saved, every state pickled; rows made so far travel in `Unfinished.rows`): the song equals one
    uncut call's, and every batch the calls run during stage 1 is one the uncut call runs, and each is run."""
    request = replace(REQUEST, sampling=Sampling(max_new_tokens=340, min_new_tokens=340))  # 2 batches a section
    whole = list(fp32.stream_takes(request, on_row=lambda piece: None, listen_rows=2))[-1]
    uncut = {(section, rows) for section, rows in batches}
    assert [(section, section_rows(whole[0], section, rows)) for section, rows in batches] == [
        (0, [0]), (0, [1, 2]), (1, [0]), (1, [1, 2])]
    batches.clear()
    cut, calls, stages = made_in_cut_calls(fp32, request, random_calls(3), on_row=lambda piece: None, listen_rows=2)
    np.testing.assert_array_equal(cut[0].codes.vocal, whole[0].codes.vocal)
    np.testing.assert_array_equal(cut[0].codes.instrumental, whole[0].codes.instrumental)
    np.testing.assert_allclose(cut[0].mix, whole[0].mix, atol=1e-6)
    assert {(section, rows) for section, rows in batches} == uncut
    assert "stage1" in stages and "killed" in stages and calls > 4


def test_a_stop_between_batches_keeps_what_was_heard_and_goes_on_to_the_uncut_song(fp32, plain):
    """listen_rows 2: a Stop after the first piece (the first row's batch made, the next one waiting for stage 1)
    keeps what was heard, and going on from `Cancelled.state` with listen_rows 2 makes the uncut song."""
    _, whole = plain("fp32")
    pieces = []
    with pytest.raises(Cancelled) as stop:
        for _ in fp32.stream_takes(REQUEST, on_row=pieces.append, cancel=lambda: len(pieces) >= 1, listen_rows=2):
            pass
    assert len(pieces) == 1 and stop.value.heard is not None and stop.value.state.section == 0
    yields = list(fp32.stream_takes(REQUEST, resume=stop.value.state, on_row=lambda piece: None, listen_rows=2))
    np.testing.assert_array_equal(yields[-1][0].codes.vocal, whole.codes.vocal)
    np.testing.assert_array_equal(yields[-1][0].mix, whole.mix)


@pytest.mark.parametrize("value", [0, -1, "x", 1.5, None, True])
def test_a_bad_listen_rows_is_refused_before_any_work(fp32, value):
    """listen_rows must be a whole number >= 1: 0, -1, text, a fraction, None and a bool are refused with a
    ValueError that names listen_rows, before the run starts."""
    with pytest.raises(ValueError, match="listen_rows"):
        next(fp32.stream_takes(REQUEST, on_row=lambda piece: None, listen_rows=value))
