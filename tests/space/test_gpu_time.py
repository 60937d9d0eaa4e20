"""space.gpu_time: ZeroGPU bookings come from the speeds bench/gpu measured, with a margin, and never pass the cap."""
from space import gpu_time
from yue.config import Sampling


def test_a_full_section_books_more_than_it_took_on_the_measured_gpu():
    """bf16, 3000 tokens (30 s): the H200 run took 41.5 s for the whole section; the booking covers that scaled to
    ZeroGPU's slower card (an estimate) with the margin, and stays under ZeroGPU's 300 s."""
    booked = gpu_time.section_seconds(Sampling(max_new_tokens=3000), "bf16")
    assert 41.5 * gpu_time.ZEROGPU_SLOWDOWN * 1.3 < booked < gpu_time.MAX_SECONDS


def test_short_sections_book_less_and_slow_precisions_more():
    short, full = Sampling(max_new_tokens=200), Sampling(max_new_tokens=3000)
    assert gpu_time.section_seconds(short) < gpu_time.section_seconds(full)
    assert gpu_time.section_seconds(full, "bf16") < gpu_time.section_seconds(full, "nf4")
    assert gpu_time.section_seconds(full, "int8") == gpu_time.MAX_SECONDS  # 3000 int8 tokens: longer than one call


def test_unknown_precision_books_as_bf16():
    assert gpu_time.section_seconds(Sampling(), "fp32") == gpu_time.section_seconds(Sampling(), "bf16")


def test_takes_book_a_fraction_of_stage_1_and_all_of_stage_2_per_extra_take():
    """2 takes of a 15 s bf16 section: stage 1 (1500 tokens at 112/s) x 1.15, stage 2 (13.7 s) x 2 and one more
    render of 1 s, scaled to ZeroGPU's card, with the margin, on top of the fixed time; more than one take, less than
    two separate calls; 4 takes of a 30 s section pass one call's limit and are capped."""
    half = Sampling(max_new_tokens=1500)
    one, two = gpu_time.section_seconds(half, "bf16"), gpu_time.section_seconds(half, "bf16", takes=2)
    assert two == int(15 + 1.5 * gpu_time.ZEROGPU_SLOWDOWN * (1500 / 112 * 1.15 + 13.7 * 2 + 1))
    assert one == gpu_time.section_seconds(half, "bf16", takes=1) < two < 2 * one
    assert gpu_time.section_seconds(Sampling(), "bf16", takes=4) == gpu_time.MAX_SECONDS
