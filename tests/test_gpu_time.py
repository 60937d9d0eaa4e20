"""yue.gpu_time: ZeroGPU bookings come from the speeds bench/gpu.py measured, with a margin, and never pass the cap."""
from yue import gpu_time
from yue.config import Sampling


def test_a_full_section_books_more_than_it_took_on_the_measured_gpu():
    """bf16, 3000 tokens (30 s): the H200 run took 41.5 s for the whole section; the booking covers that with the
    margin and stays well under ZeroGPU's 300 s."""
    booked = gpu_time.section_seconds(Sampling(max_new_tokens=3000), "bf16")
    assert 41.5 * 1.3 < booked < 120


def test_short_sections_book_less_and_slow_precisions_more():
    short, full = Sampling(max_new_tokens=200), Sampling(max_new_tokens=3000)
    assert gpu_time.section_seconds(short) < gpu_time.section_seconds(full)
    assert gpu_time.section_seconds(full, "bf16") < gpu_time.section_seconds(full, "nf4")
    assert gpu_time.section_seconds(full, "int8") == gpu_time.MAX_SECONDS  # 3000 int8 tokens: longer than one call


def test_unknown_precision_books_as_bf16():
    assert gpu_time.section_seconds(Sampling(), "fp32") == gpu_time.section_seconds(Sampling(), "bf16")


def test_takes_book_a_fraction_of_stage_1_and_all_of_stage_2_per_extra_take():
    """4 takes of a 30 s bf16 section: stage 1 (26.8 s) x 1.45, stage 2 (13.7 s) x 4 and 3 more renders of 1 s,
    with the margin, on top of the fixed time: 159 s, more than one take's 75 s, less than 4 separate calls."""
    full = Sampling(max_new_tokens=3000)
    one, four = gpu_time.section_seconds(full, "bf16"), gpu_time.section_seconds(full, "bf16", takes=4)
    assert four == int(15 + 1.5 * (3000 / 112 * 1.45 + 13.7 * 4 + 3)) == 159
    assert one == gpu_time.section_seconds(full, "bf16", takes=1) < four < 4 * one
    assert gpu_time.section_seconds(full, "nf4", takes=4) == gpu_time.MAX_SECONDS  # capped at one call
