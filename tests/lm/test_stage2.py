"""yue.lm.stage2: cached, batched teacher forcing equals the official per-frame generate loop."""
import numpy as np
import pytest

from yue.lm import official, stage2
from yue.config import Stage2Config


def test_rows_follow_the_official_split():
    """Whole chunks first, then one row with the remaining frames; a short track is one tail row."""
    rows = stage2.plan_rows([650, 120], 300)
    assert [(r.track, r.start, r.length) for r in rows] == [(0, 0, 300), (0, 300, 300), (0, 600, 50), (1, 0, 120)]


@pytest.mark.parametrize("frames", [2 * 16 + 5, 9])
def test_codes_equal_the_official_per_frame_algorithm(stage2_model, frames):
    """Greedy codes for whole chunks and a short tail (which crashes the official code when it is the whole track)
    equal re-prefilling every frame with generate(7 tokens) and the per-position codebook restriction."""
    rng = np.random.default_rng(frames)
    vocal, instrumental = rng.integers(0, 1024, frames), rng.integers(0, 1024, frames)
    ours = stage2.generate(stage2_model, [vocal, instrumental], Stage2Config(chunk_frames=16))
    for track, codes in zip([vocal, instrumental], ours):
        assert codes.shape == (8, frames)
        assert (codes[0] == track).all()
        np.testing.assert_array_equal(codes, official.stage2_generate(stage2_model, track, chunk_frames=16))


def test_position_k_is_always_a_codebook_k_code(stage2_model):
    codes = stage2.generate(stage2_model, [np.arange(20) % 1024], Stage2Config(chunk_frames=8))[0]
    assert codes.min() >= 0 and codes.max() < 1024


def test_batch_limit_does_not_change_codes(stage2_model):
    """Rows decoded one at a time equal rows decoded together."""
    track = np.random.default_rng(1).integers(0, 1024, 40)
    together = stage2.generate(stage2_model, [track], Stage2Config(chunk_frames=8))[0]
    alone = stage2.generate(stage2_model, [track], Stage2Config(chunk_frames=8, max_batch=1))[0]
    np.testing.assert_array_equal(together, alone)


def test_known_rows_are_reused_and_the_result_is_unchanged(stage2_model):
    """A song growing section by section: rows finished earlier are copied, the rest computed; same codes."""
    track = np.random.default_rng(2).integers(0, 1024, 30)
    first = stage2.generate(stage2_model, [track[:19]], Stage2Config(chunk_frames=8))[0]
    progress = []
    grown = stage2.generate(stage2_model, [track], Stage2Config(chunk_frames=8), progress.append, known=[first])[0]
    np.testing.assert_array_equal(grown, stage2.generate(stage2_model, [track], Stage2Config(chunk_frames=8))[0])
    assert progress[-1].frames_total == 30 - 16  # rows 0-7 and 8-15 were reused; 16-23 and the tail were not


def test_bad_codebook0_code_is_named(stage2_model):
    with pytest.raises(ValueError, match="track 0: codebook-0 code 1024"):
        stage2.generate(stage2_model, [np.array([1, 1024])])


def test_memory_batch_size_is_positive_and_bounded(stage2_model):
    assert 1 <= stage2.memory_batch_size(stage2_model, 2403)


def test_rows_made_apart_and_heard_as_they_go_equal_one_batch(stage2_model):
    """make_rows (as yue/rows.py calls it while stage 1 goes on): one row pair at a time gives the codes of all
    rows in one batch (fp32 on the CPU), and `on_codes` hears each batch's rows every chunk // PIECES_PER_ROW frames
    and when done, each hearing a prefix of the row's final codes."""
    rng = np.random.default_rng(4)
    chunk = 12
    tracks = [rng.integers(0, 1024, 3 * chunk), rng.integers(0, 1024, 3 * chunk)]
    whole = stage2.generate(stage2_model, tracks, Stage2Config(chunk_frames=chunk))
    heard = []
    for start in range(0, 3 * chunk, chunk):
        rows = [stage2.Row(track, start, chunk) for track in (0, 1)]
        parts = stage2.make_rows(stage2_model, tracks, rows, Stage2Config(chunk_frames=chunk),
                                 on_codes=heard.append)
        for part in parts:
            np.testing.assert_array_equal(part.codes, whole[part.row.track][:, start:start + chunk])
    step = chunk // stage2.PIECES_PER_ROW
    assert [hearing[0].codes.shape[1] for hearing in heard] == list(range(step, chunk + 1, step)) * 3
    for hearing in heard:
        for part in hearing:
            made = part.codes.shape[1]
            np.testing.assert_array_equal(part.codes, whole[part.row.track][:, part.row.start:part.row.start + made])
