"""yue.lm.cut_state: a section cut part-way, saved in a song bundle and loaded back, resumes exactly (the song of an
uncut run), and a damaged record is refused with the array named."""
from dataclasses import replace

import numpy as np
import pytest

from yue import Pipeline, Sampling, SongRequest
from yue.arrays import ArrayFileError
from yue.lm import cut_state
from yue.lm.deadline import Deadline, OutOfTime
from yue.song import SongCodes
from yue.weights.loading import load_models

LYRICS = "[verse]\nhello there\n\n[chorus]\nla la la\n\n[outro]\nbye"
FAST = Sampling(max_new_tokens=12, min_new_tokens=4)


@pytest.fixture(scope="module")
def pipeline(tiny_lm_dir):
    return Pipeline(load_models(stage1=tiny_lm_dir / "s1", stage2=tiny_lm_dir / "s2", codec=False))


class Steps:
    """A clock that moves one second per read: a deadline `n` seconds out stops a loop after about `n` reads."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def cut_after(pipeline: Pipeline, request: SongRequest, reads: int):
    """The songs of `request` with one section done, and the next one stopped after `reads` clock reads."""
    first = list(pipeline.stream_takes(replace(request, segments=1)))[-1]
    clock = Steps()
    try:
        list(pipeline.stream_takes(replace(request, segments=2), previous=[s.codes for s in first],
                                   deadline=Deadline.after(reads, clock, every=1)))
    except OutOfTime as stop:
        return first, stop.state
    raise AssertionError("the section was not cut")


@pytest.mark.parametrize("reads", [3, 14])  # stage 1 under way; stage 1 done and stage 2 under way
def test_a_bundle_with_a_cut_section_continues_to_the_uncut_song(pipeline, tmp_path, reads):
    """Section 2 cut in stage 1 or in stage 2, saved with section 1 in a bundle and loaded back (every field equal),
    continues (as `--continue-from` does: the bundle as `previous`) to the song one uncut run makes."""
    request = SongRequest("pop", LYRICS, 3, FAST, seed=5)
    whole = list(pipeline.stream(request))[-1]
    first, state = cut_after(pipeline, request, reads)
    assert state.stage == ("stage1" if reads == 3 else "stage2")
    path = replace(first[0].codes, unfinished=state).save(tmp_path / "song.npz", {"seed": 5})
    codes, _ = SongCodes.load(path)
    loaded = codes.unfinished
    assert loaded.section == 1 and loaded.stage == state.stage and loaded.takes == 1
    if state.stage1 is not None:
        assert loaded.stage1.step == state.stage1.step and loaded.stage1.generators == state.stage1.generators
        assert [ids.tolist() for ids in loaded.stage1.ids] == [ids.tolist() for ids in state.stage1.ids]
    else:
        assert [(p.row, p.codes.tolist()) for p in loaded.rows] == [(p.row, p.codes.tolist()) for p in state.rows]
        assert loaded.sections[0].vocal.tolist() == state.sections[0].vocal.tolist()
    song = list(pipeline.stream(replace(request, previous=codes)))[-1]
    for got, expected in ((song.codes.stage1.vocal, whole.codes.stage1.vocal), (song.codes.vocal, whole.codes.vocal),
                          (song.codes.instrumental, whole.codes.instrumental)):
        np.testing.assert_array_equal(got, expected)
    assert song.codes.stage1.section_frames == whole.codes.stage1.section_frames
    with pytest.raises(ValueError, match="continue it with takes = 1"):
        list(pipeline.stream(replace(request, previous=codes, takes=2)))


def test_cut_and_keep_sections_drop_the_unfinished_section(pipeline):
    request = SongRequest("pop", LYRICS, 3, FAST, seed=5)
    first, state = cut_after(pipeline, request, 3)
    codes = replace(first[0].codes, unfinished=state)
    assert codes.keep_sections(1).unfinished is None and codes.cut(codes.frames).unfinished is None


def damaged(pipeline, tmp_path, reads: int, change) -> str:
    """The message loading a bundle gives when `change(arrays)` altered its record."""
    request = SongRequest("pop", LYRICS, 3, FAST, seed=5)
    first, state = cut_after(pipeline, request, reads)
    path = replace(first[0].codes, unfinished=state).save(tmp_path / "song.npz")
    with np.load(path) as data:
        arrays = dict(data)
    change(arrays)
    np.savez(path, **arrays)
    with pytest.raises(ArrayFileError) as error:
        SongCodes.load(path)
    return str(error.value)


def test_damaged_records_are_refused_naming_what_is_wrong(pipeline, tmp_path):
    """Another section than the next, ids outside codebook 0, a take said to go on with too few ids, a generator
    state of the wrong size, arrays of the other stage, a stage-2 row that does not continue the song's codes."""
    key = lambda name: cut_state.PREFIX + name

    def head(arrays, index, value):
        arrays[key("head")] = arrays[key("head")].copy()
        arrays[key("head")][index] = value

    assert "it is section 3, but the song has 1 finished sections" in damaged(
        pipeline, tmp_path, 3, lambda a: head(a, 0, 2))
    outside = lambda a: a.update({key("ids"): a[key("ids")] + 1024})  # codebook 1's ids
    assert "ids holds values outside" in damaged(pipeline, tmp_path, 3, outside)
    assert "a take still going has not made one id per step" in damaged(pipeline, tmp_path, 3,
                                                                        lambda a: head(a, 2, 4))
    assert "generators has shape" in damaged(pipeline, tmp_path, 3,
                                            lambda a: a.update({key("generators"): a[key("generators")][:, :16]}))
    assert "stage 1 needs" in damaged(pipeline, tmp_path, 3, lambda a: a.update({key("rows"): np.zeros((0, 4), int)}))

    def shifted(arrays):
        codes = arrays[key("row_codes")].copy()
        codes[0, 0] = (codes[0, 0] + 1) % 1024
        arrays[key("row_codes")] = codes

    assert "does not continue the song's stage-1 codes" in damaged(pipeline, tmp_path, 14, shifted)
