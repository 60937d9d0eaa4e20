"""space/song_progress.py: the whole song's share done (sections x steps, weighted by their measured cost, never
going back) and its time left, which counts down with a fake clock."""
from space import gpu_time
from space.song_progress import SongProgress, measured_costs
from yue.config import Sampling
from yue.song import Progress


def event(stage: str, done: int, total: int) -> Progress:
    return Progress(stage, 0, 2, done, total)


def test_the_costs_before_a_measurement_are_bench_gpus_speeds():
    """1000 tokens at the measured bf16 112 tokens/s; 500 frames of a 300-frame row at 13.7 s a row; 1 s of audio."""
    costs = measured_costs(Sampling(max_new_tokens=1000), "bf16")
    assert costs["stage1"] == 1000 / gpu_time.MEASURED["bf16"].stage1_tokens_per_s
    assert costs["stage2"] == gpu_time.MEASURED["bf16"].stage2_row_s and costs["audio"] == gpu_time.RENDER_SECONDS
    two = measured_costs(Sampling(max_new_tokens=1000), "bf16", takes=2)
    assert two["stage2"] == 2 * costs["stage2"] and two["stage1"] < 2 * costs["stage1"]


def test_the_share_done_counts_sections_and_weighs_steps_by_cost():
    """2 sections, stage 1 costs 2 s, stage 2 and audio 1 s each: half of stage 1 is 1/8 of the song, the end of
    stage 2 3/8, the first section 1/2."""
    song = SongProgress(2, {"stage1": 2.0, "stage2": 1.0, "audio": 1.0})
    assert song.step(0, event("stage1", 50, 100), 0.0).fraction == 0.125
    assert song.step(0, event("stage2", 10, 10), 1.0).fraction == 0.375
    assert song.section_done(0, {"stage1_s": 2.0, "stage2_s": 1.0, "audio_s": 1.0}, 2.0).fraction == 0.5
    assert song.step(1, event("stage1", 0, 100), 3.0).fraction == 0.5


def test_measured_costs_replace_the_estimates_and_the_share_never_goes_back():
    """After a section whose stage 2 took 9 of its 10 s, stage 1's end is 1/10 of a section, not 8/10 as estimated,
    yet the share shown does not fall back."""
    song = SongProgress(2, {"stage1": 8.0, "stage2": 1.0, "audio": 1.0})
    song.step(0, event("stage1", 100, 100), 1.0)
    assert song.shown == 0.4
    song.section_done(0, {"stage1_s": 0.5, "stage2_s": 9.0, "audio_s": 0.5}, 10.0)
    assert song.costs == {"stage1": 0.5, "stage2": 9.0, "audio": 0.5}
    assert song.step(1, event("stage1", 100, 100), 11.0).fraction == 0.525  # (1 + 0.05) / 2
    assert SongProgress(1, {"stage1": 1.0, "stage2": 1.0, "audio": 1.0}).section_done(
        0, {"stage1_s": 1.0, "stage2_s": 2.0}, 1.0).fraction == 1.0  # token-only: no audio step


def simulate(sections: int, costs: dict, stage1=(1000, 100.0), stage2=(500, 50.0), audio_s=2.0, tick=0.25):
    """A run at steady speeds on a fake clock: events every `tick` s; (time, true seconds left, shown) for each."""
    song, now, answers = SongProgress(sections, costs), 0.0, []
    per_section = stage1[0] / stage1[1] + stage2[0] / stage2[1] + audio_s
    end = sections * per_section
    for index in range(sections):
        for stage, (total, speed) in (("stage1", stage1), ("stage2", stage2)):
            for tick_index in range(int(total / speed / tick) + 1):
                done = min(round(tick_index * tick * speed), total)
                answers.append((now, end - now, song.step(index, Progress(stage, index, sections, done, total),
                                                          now).left_s))
                now += tick
            now -= tick
        now += audio_s
        timings = {"stage1_s": stage1[0] / stage1[1], "stage2_s": stage2[0] / stage2[1], "audio_s": audio_s}
        answers.append((now, end - now, song.section_done(index, timings, now).left_s))
    return answers


def test_the_time_left_is_for_the_whole_song_and_counts_down():
    """3 sections of 10 s stage 1, 10 s stage 2 and 2 s audio (66 s), estimated beforehand as a GPU would run them
    (stage 1 ten times stage 2): once the first section is measured, every number shown is within 15% (+2 s) of the
    true time left for the whole song, and a number shown never rises above the one before it."""
    answers = simulate(3, {"stage1": 10.0, "stage2": 1.0, "audio": 1.0})
    later = [(now, truth, shown) for now, truth, shown in answers if now > 23.0]
    shown = [(truth, left) for _, truth, left in later if left is not None]
    assert len(shown) > 0.8 * len(later)  # a number nearly all the time
    assert all(abs(left - truth) <= 0.15 * truth + 2.0 for truth, left in shown), shown
    numbers = [left for _, _, left in answers if left is not None]
    assert numbers[0] > 30.0  # the whole song, not the step (at most 10 s)
    rises = [(a, b) for (_, _, a), (_, _, b) in zip(answers, answers[1:]) if a is not None and b is not None and b > a]
    assert rises == []
