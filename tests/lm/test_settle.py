"""yue.lm.settle: settled decode steps make a cut and replayed run leave the cache bits of the uncut run, in bf16,
where a plain re-prefill of the same ids would not."""
import pytest
import torch

from yue.lm.decoder import BUCKET, StaticDecoder


def steps_then_cache(model, ids, sees, settle_every, replayed: int | None = None):
    """A prompt prefill, then one decode step per column of `ids` (positions moving on seen ids only), or with
    `replayed` that many columns given to `replay` first. Returns (decoder, the last hidden states)."""
    dec = StaticDecoder(model, ids.shape[0], BUCKET, settle_every=settle_every)
    prompt = torch.arange(100, 140).expand(ids.shape[0], -1)
    hidden = dec.prefill(prompt, torch.arange(40).expand(ids.shape[0], -1), 0)
    positions = 40 + sees.cumsum(1) - sees.long()
    first = replayed or 0
    if replayed:
        hidden = dec.replay(40, ids[:, :first], positions[:, :first], sees[:, :first])
    for column in range(first, ids.shape[1]):
        dec.step_sees.copy_(sees[:, column])
        hidden = dec.step(40 + column, ids[:, column], positions[:, column]).clone()
    dec.settle()
    return dec, hidden


@torch.inference_mode()
@pytest.mark.parametrize("replayed", [11, 64, 87])
def test_replayed_steps_leave_the_bits_the_settled_steps_left(tiny_lm_dir, replayed):
    """In bf16: a run that replays the first steps (as a resumed call does: whole blocks as prefills, the rest as
    steps), then goes on stepping, leaves every cache slot and the last hidden state bit for bit as the uncut run that
    stepped and settled every 16 steps; rows stop seeing their slots at different steps."""
    from yue.weights.loading import load_lm

    model = load_lm(tiny_lm_dir / "s1", dtype=torch.bfloat16)
    ids = torch.randint(45334, 46358, (4, 100), generator=torch.Generator().manual_seed(2))
    sees = torch.ones(4, 100, dtype=torch.bool)
    sees[1, 70:] = sees[3, 30:] = False
    uncut, expected = steps_then_cache(model, ids, sees, 16)
    cut, got = steps_then_cache(model, ids, sees, 16, replayed)
    assert torch.equal(got, expected) and torch.equal(cut.visible, uncut.visible)
    for a, b in zip(cut.keys + cut.values, uncut.keys + uncut.values):
        assert torch.equal(a[:, :, :140], b[:, :, :140])


@torch.inference_mode()
def test_without_settling_a_replay_rounds_otherwise_in_bf16(tiny_lm_dir):
    """Why settling exists: in bf16 a prefill of ids and decode steps of the same ids leave different cache bits, so a
    call that re-created its cache by one prefill sampled other tokens than the uncut run."""
    from yue.weights.loading import load_lm

    model = load_lm(tiny_lm_dir / "s1", dtype=torch.bfloat16)
    ids = torch.randint(45334, 46358, (2, 100), generator=torch.Generator().manual_seed(3))
    sees = torch.ones(2, 100, dtype=torch.bool)
    stepped, _ = steps_then_cache(model, ids, sees, None)
    prefilled, _ = steps_then_cache(model, ids, sees, None, replayed=100)  # settle_every None: one prefill
    assert not all(torch.equal(a, b) for a, b in zip(stepped.keys, prefilled.keys))
