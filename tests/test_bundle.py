"""yue/bundle.py's checks: every field's shape, dtype and range and what the fields agree on (BUNDLE_SPECS,
AGREEMENTS) are checked when a bundle is loaded and when a song in memory is continued, so a bundle that would
fail (or quietly go wrong) after the models loaded is refused with a message naming the file and the field."""
import json

import numpy as np
import pytest

from yue.arrays import ArrayFileError
from yue.lm.stage1 import Stage1Tokens
from yue.song import SongCodes

from .bundles import bundle_with, meta, refused, song, with_stage2


@pytest.mark.parametrize("rows", [1, 3, 9])
def test_stage2_codes_without_8_codebooks_are_refused_on_load(tmp_path, rows):
    """The fourth campaign's defect 1: 1 row was copied into all 8 codebooks and saved as a valid song; 3 or 9 rows
    failed after the models loaded ("could not broadcast (3,300) into (8,300)")."""
    message = refused(with_stage2(rows).save(tmp_path / "rows.npz"))
    assert f"its stage-2 vocal codes have shape ({rows}, 5); expected (8, frames)" in message


@pytest.mark.parametrize("rows", [1, 3, 9])
def test_a_song_in_memory_is_checked_by_the_same_table(rows):
    """SongCodes.check (what check_request runs on `previous`) names the same field, before any model work."""
    with pytest.raises(ValueError, match=rf"the song to continue: its stage-2 vocal codes have shape \({rows}, 5\)"):
        with_stage2(rows).check("the song to continue")


def test_fields_that_disagree_are_refused(tmp_path):
    """Stage-2 codebook 0 must be the stage-1 codes; stage-2 and stage-1 tracks must have the same frames."""
    good = song()
    other = good.vocal.copy()
    other[0, 2] = (other[0, 2] + 1) % 1024
    assert "its stage-2 vocal codes' codebook 0 differs from its stage-1 vocal codes" in refused(
        SongCodes(good.stage1, other, good.instrumental).save(tmp_path / "drift.npz"))
    short = SongCodes(good.stage1, good.vocal[:, :4], good.instrumental[:, :4])
    assert "its stage-2 vocal codes have 4 frames, its stage-1 vocal codes 5" in refused(
        short.save(tmp_path / "short.npz"))
    lopsided = SongCodes(Stage1Tokens(good.stage1.vocal, good.stage1.instrumental[:4], (3, 2), ("a", "b")))
    assert "its stage-1 instrumental codes have 4 frames, its stage-1 vocal codes 5" in refused(
        lopsided.save(tmp_path / "lopsided.npz"))
    assert "do not add up to its tracks' 5 frames" in refused(
        SongCodes(Stage1Tokens(good.stage1.vocal, good.stage1.instrumental, (3, 3), ("a", "b"))).save(
            tmp_path / "sum.npz"))


def test_a_bundle_of_no_frames_is_refused(tmp_path):
    """Weak answer 4: 0 frames in sections [0, 0] made a song of two empty kept sections."""
    empty = np.zeros(0, dtype=np.int64)
    path = SongCodes(Stage1Tokens(empty, empty, (0, 0), ("verse", "chorus"))).save(tmp_path / "empty.npz")
    assert "it holds no frames (every section is empty): there is nothing to continue or render" in refused(path)


def test_a_song_without_stage2_codes_and_with_an_empty_section_still_loads(tmp_path):
    """What the pipeline can make is read back: a stem continuation has no stage-2 codes, and a section may end at
    once (<EOA> allowed at step 0)."""
    good = song((3, 0, 2), stage2=False)
    codes, _ = SongCodes.load(good.save(tmp_path / "ok.npz"))
    assert codes.stage1.section_frames == (3, 0, 2) and codes.vocal is None


@pytest.mark.parametrize("fields, where", [
    ({"settings": {"lyrics": "[verse]\nla \udcff"}}, "settings.lyrics"),
    ({"settings": {"sampling": {"top_p\udcff": 0.9}}}, "settings.sampling.top_p\\udcff"),
    ({"settings": {"continued_from": {"x": ["a", "\ud800"]}}}, "settings.continued_from.x.1"),
])
def test_text_that_no_response_can_carry_is_refused_on_load(tmp_path, fields, where):
    """Defect 3: a lone surrogate (JSON's "\\udcff") in a bundle's settings reached the Continue tab's helper, whose
    response encoder failed (HTTP 500). Refused on load, naming where it is."""
    text = json.dumps({"version": 1, "labels": ["s0", "s1"], "settings": {}, **fields})
    assert "\\udcff" in text or "\\ud800" in text  # escaped, as a hostile file holds it
    message = refused(bundle_with(tmp_path / "odd.npz", {"meta.npy": meta(**fields)}))
    assert f"its {where} holds a character that is not text (a lone surrogate" in message
    message.encode("utf-8")  # the message itself can be sent


def test_every_bundle_error_is_an_array_file_error():
    """check() raises the bundle errors' type (a ValueError), so callers catch one type."""
    with pytest.raises(ArrayFileError):
        with_stage2(1).check()
