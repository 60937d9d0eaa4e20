"""space.gpu_time: each call books a chunk of a visitor's quota (less when less work is left), spaces' own factor is
applied once, and every call's deadline leaves room for what happens before and after it."""
import numpy as np
import pytest

from space import gpu_time
from yue.config import Sampling
from yue.lm.stage1 import Stage1Partial
from yue.lm.stage2 import Row, RowCodes
from yue.song import Unfinished


@pytest.fixture
def blackwell(monkeypatch):
    """spaces' factor of ZeroGPU's RTX PRO 6000 Blackwell (zero/configs.json): 1.5."""
    monkeypatch.setattr(gpu_time, "duration_factor", lambda: 1.5)


def test_a_30s_bf16_section_never_asks_a_visitor_for_more_than_90s_in_one_booking(blackwell):
    """Every planned call of a 30 s section (1 to 4 takes, every precision) books at most CHUNK_SECONDS <= 90 visitor
    seconds; spaces is asked for whole seconds (it reads timedelta.seconds) that its factor 1.5 turns back into what
    the call counts on (`granted`, at most the booking): the visitor is charged once, the deadline never overshoots."""
    for precision in ("bf16", "int8", "nf4"):
        for takes in (1, 2, 3, 4):
            bookings = gpu_time.planned_calls(Sampling(), precision, takes)
            assert max(bookings) <= gpu_time.CHUNK_SECONDS <= 90
            for booked in [*bookings, 61, 59, 20]:
                requested = gpu_time.request_seconds(gpu_time.granted(booked))
                assert isinstance(requested, int) and round(requested * 1.5) == gpu_time.granted(booked) <= booked
    assert len(gpu_time.planned_calls(Sampling(), "bf16")) > 1  # a 30 s section takes several calls


def test_every_call_has_time_to_work_before_its_deadline():
    """The least and the most a call books, for 1 to 4 takes, leave a positive time to work once the startup and
    the stop margin (K steps, the stage-2 queue, rendering every take) are taken off."""
    for takes in (1, 2, 3, 4):
        for booked in (gpu_time.MIN_CALL_SECONDS, gpu_time.CHUNK_SECONDS):
            assert gpu_time.deadline_seconds(booked, takes) > 0
    assert gpu_time.deadline_seconds(60, 1) == 60 - gpu_time.STARTUP_SECONDS - gpu_time.stop_seconds(1)


def test_a_short_section_books_less_than_a_chunk_and_in_one_call():
    """200 tokens (2 s of audio): the estimated work with its margin and fixed costs, under a chunk, one call."""
    short = Sampling(max_new_tokens=200)
    assert gpu_time.planned_calls(short) == [gpu_time.call_seconds(short)]
    assert gpu_time.MIN_CALL_SECONDS <= gpu_time.call_seconds(short) < gpu_time.CHUNK_SECONDS


def test_work_left_shrinks_as_a_section_goes_on():
    """An unfinished section has less work left: halfway through stage 1 less than at the start; in stage 2 less
    still, and less again once half of its rows' frames are made."""
    full = gpu_time.work_seconds(Sampling(), "bf16")
    ids = (np.zeros(1500, dtype=np.int64),)
    half_stage1 = Unfinished(0, stage1=Stage1Partial(0, 1500, ids, (True,), (b"",), "cpu"))
    row = Row(0, 0, 300)
    begun = Unfinished(0, sections=("done",), rows=(RowCodes(row, np.zeros((8, 0), dtype=np.int64)),))
    half_rows = Unfinished(0, sections=("done",), rows=(RowCodes(row, np.zeros((8, 150), dtype=np.int64)),))
    left = [gpu_time.work_seconds(Sampling(), "bf16", 1, state) for state in (half_stage1, begun, half_rows)]
    assert full > left[0] > left[1] > left[2] > 0


def test_the_song_estimate_adds_up_each_sections_calls_at_its_own_length():
    """A song's bookings are its sections' planned calls, each section's with the hand-over of the song as long as
    it is when that section ends (later sections book no less); an 'xlarge' second counts twice."""
    per_section = [sum(gpu_time.planned_calls(Sampling(), "bf16", 2, audio_s=30.0 * n)) for n in (1, 2, 3)]
    assert gpu_time.song_seconds(Sampling(), "bf16", 2, 3) == sum(per_section)
    assert per_section == sorted(per_section)
    xlarge = gpu_time.CARDS["xlarge"]
    assert gpu_time.song_seconds(Sampling(), "bf16", 1, 1, xlarge) == 2 * sum(
        gpu_time.planned_calls(Sampling(), "bf16", 1, card=xlarge, audio_s=30.0))


def test_precisions_not_measured_on_a_gpu_book_at_bf16s_speed():
    """torchao int8 and int4 (not measured on a GPU yet) and unknown precisions book as bf16 does, not at
    bitsandbytes' speeds; nf4 and bnb-int8 (measured) book at their own, slower ones."""
    bf16 = gpu_time.call_seconds(Sampling(), "bf16")
    assert all(gpu_time.work_seconds(Sampling(), p) == gpu_time.work_seconds(Sampling(), "bf16")
               for p in ("int8", "int4", "fp32"))
    assert gpu_time.call_seconds(Sampling(), "int8") == gpu_time.call_seconds(Sampling(), "int4") == bf16
    assert gpu_time.work_seconds(Sampling(), "bf16") < gpu_time.work_seconds(Sampling(), "nf4") < gpu_time.work_seconds(
        Sampling(), "bnb-int8")


def test_a_calls_least_booking_grows_with_the_song_it_hands_over():
    """The hand-over written when a section ends grows with the song and the takes: the least booking and the stop
    margin grow with them, and every booking leaves MIN_WORK_SECONDS of work after its fixed costs."""
    short, long = (gpu_time.least_booking(4, seconds) for seconds in (30.0, 360.0))
    assert gpu_time.MIN_CALL_SECONDS <= short < long
    for takes, seconds in ((1, 30.0), (4, 360.0)):
        for booked in gpu_time.planned_calls(Sampling(), "bf16", takes, audio_s=seconds):
            assert gpu_time.deadline_seconds(booked, takes, seconds) >= gpu_time.MIN_WORK_SECONDS


def test_a_slow_worker_start_moves_the_deadline_earlier():
    """A call whose worker took longer than STARTUP_SECONDS from its fork to its first line (measured) stops that
    much earlier; a quicker one does not stop later."""
    base = gpu_time.deadline_seconds(60)
    assert gpu_time.deadline_seconds(60, startup=1.0) == base
    assert gpu_time.deadline_seconds(60, startup=gpu_time.STARTUP_SECONDS + 7) == base - 7


def test_the_card_is_the_one_spaces_runs_on(monkeypatch):
    """Off ZeroGPU the estimates are for ZeroGPU's default card; on it, 'xlarge' when spaces chose it at start-up,
    the H200 when zero/configs.json names it, else the default 'large'."""
    import spaces.zero
    from spaces.config import Config
    from spaces.zero import config

    assert gpu_time.current_card() is gpu_time.CARDS["large"]
    monkeypatch.setattr(Config, "zero_gpu", True)
    monkeypatch.setattr(config, "get_config", lambda: {"model": "NVIDIA H200", "duration_factor": 1.0})
    assert gpu_time.current_card() is gpu_time.CARDS["h200"]
    monkeypatch.setattr(spaces.zero, "_default_gpu_size", "xlarge")
    assert gpu_time.current_card() is gpu_time.CARDS["xlarge"]


def test_duration_factor_is_spaces_own_on_zero_gpu_and_one_elsewhere(monkeypatch):
    """Off ZeroGPU (this machine) the factor is 1; on ZeroGPU it is zero/configs.json's entry for the GPU (here
    faked as the Blackwell's 1.5), and 1 for an 'xlarge' GPU, which spaces does not scale."""
    import spaces.zero
    from spaces.config import Config
    from spaces.zero import config

    assert gpu_time.duration_factor() == 1.0 and not gpu_time.on_zero_gpu()
    monkeypatch.setattr(Config, "zero_gpu", True)
    monkeypatch.setattr(config, "get_config", lambda: {"duration_factor": 1.5})
    assert gpu_time.on_zero_gpu() and gpu_time.duration_factor() == 1.5
    monkeypatch.setattr(spaces.zero, "_default_gpu_size", "xlarge")
    assert gpu_time.duration_factor() == 1.0


def test_listening_books_exactly_its_stage2_batches_more():
    """Hearing rows while a section is made adds, on every card, precision and number of takes, exactly
    listen_batches(whole rows of the token budget, LISTEN_ROWS) stage-2 batches of one whole row batch each, times
    the card's slowdown (a 30 s section: 5 rows, 2 batches); a budget under one row adds none. The planned calls
    and a song's booking grow with it; once stage 1 is done (stage 2 under way) it adds nothing."""
    from yue.rows import listen_batches

    for tokens, batches in ((3000, 2), (8000, 1 + (13 - 1) // gpu_time.LISTEN_ROWS), (599, 0)):
        sampling = Sampling(max_new_tokens=tokens, min_new_tokens=4)
        assert listen_batches(tokens // 600, gpu_time.LISTEN_ROWS) == batches
        for card in gpu_time.CARDS.values():
            for precision in ("bf16", "nf4"):
                for takes in (1, 3):
                    plain, heard = (gpu_time.work_seconds(sampling, precision, takes, card=card, listen=listen)
                                    for listen in (False, True))
                    extra = batches * gpu_time.speed(precision).stage2_row_s * card.slowdown
                    assert heard - plain == pytest.approx(extra, abs=1e-9)
    official, large = Sampling(), gpu_time.CARDS["large"]
    assert sum(gpu_time.planned_calls(official, listen=True, card=large)) > sum(gpu_time.planned_calls(
        official, card=large))
    assert gpu_time.song_seconds(official, "bf16", 1, 2, large, listen=True) > gpu_time.song_seconds(
        official, "bf16", 1, 2, large)
    row = Row(0, 0, 300)
    in_stage2 = Unfinished(0, sections=("done",), rows=(RowCodes(row, np.zeros((8, 150), dtype=np.int64)),))
    assert gpu_time.work_seconds(official, unfinished=in_stage2, listen=True) == gpu_time.work_seconds(
        official, unfinished=in_stage2)
