"""yue.cli.progress: one rewritten line per step on a terminal, a few plain lines when piped, a short summary."""
import io
from pathlib import Path

from yue.cli.progress import ProgressLine, describe, summary
from yue.song import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    """Seconds that the test moves on by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def screen(written: str) -> list[str]:
    """What a terminal shows for `written`: a carriage return goes back to the start of the line, later characters
    overwrite earlier ones, a newline starts the next line."""
    lines, line, column = [], [], 0
    for char in written:
        if char == "\r":
            column = 0
        elif char == "\n":
            lines.append("".join(line).rstrip())
            line, column = [], 0
        else:
            line[column:column + 1] = [char]
            column += 1
    return lines + (["".join(line).rstrip()] if line else [])


def step_events(stage: str, section: int, total: int, every: int = 1, last: int | None = None):
    """A step's events as the pipeline sends them: done = every, 2 every, ... up to `last` (default: total), at 100
    per second."""
    last = total if last is None else last
    return [Progress(stage, section, 2, done, total, rate=100.0, eta_s=(total - done) / 100.0)
            for done in list(range(every, last, every)) + [last]]


def feed(line: ProgressLine, clock: Clock, events, seconds_apart: float = 0.25) -> None:
    for event in events:
        clock.now += seconds_apart
        line(event)


def test_describe_says_section_stage_count_unit_time_and_what_is_left():
    event = Progress("stage1", 0, 2, 340, 3000, rate=28.3, eta_s=94.0)
    assert describe(event, 12.0) == "section 1/2 stage 1: 340/3000 tokens, 12 s, about 94 s left"
    assert describe(Progress("stage2", 1, 2, 400, 400, 190.0, 0.0), 2.1) == "section 2/2 stage 2: 400/400 frames, 2.1 s"


def test_terminal_shows_one_line_per_step_rewritten_in_place():
    """300 events in two steps leave two lines on the screen, each the step's last state; every update is a
    carriage-return rewrite, not a new line."""
    stream, clock = Terminal(), Clock()
    line = ProgressLine(stream, clock=clock)
    feed(line, clock, step_events("stage1", 0, 200))
    feed(line, clock, step_events("stage2", 0, 100))
    written = stream.getvalue()
    assert screen(written) == ["section 1/2 stage 1: 200/200 tokens, 2.0 s",
                               "section 1/2 stage 2: 100/100 frames, 1.0 s"]
    assert written.count("\n") == 2 and written.count("\r") == 300


def test_terminal_blanks_the_rest_of_a_longer_line():
    """An update shorter than the one before it (the 'about N s left' part goes) leaves no stale characters."""
    stream, clock = Terminal(), Clock()
    line = ProgressLine(stream, clock=clock)
    feed(line, clock, [Progress("stage1", 0, 1, 100, 3000, 100.0, 29.0),
                       Progress("stage1", 0, 1, 3000, 3000, 100.0, 0.0)])
    assert screen(stream.getvalue()) == ["section 1/1 stage 1: 3000/3000 tokens, 30 s"]


def test_a_step_that_stops_early_keeps_its_last_line():
    """Stage 1 ending at <EOA> (150 of 200 tokens) is ended by the next step's first event, on a terminal and piped."""
    for stream in (Terminal(), io.StringIO()):
        clock = Clock()
        line = ProgressLine(stream, clock=clock)
        feed(line, clock, step_events("stage1", 0, 200, every=50, last=150))
        feed(line, clock, step_events("stage2", 0, 75, every=75))
        assert screen(stream.getvalue()) == ["section 1/2 stage 1: 150/200 tokens, 1.5 s, about 0 s left",
                                             "section 1/2 stage 2: 75/75 frames, 0.8 s"]


def test_piped_output_is_one_plain_line_per_step():
    """Piped, 300 events four a second make one line per step, with no carriage returns."""
    stream, clock = io.StringIO(), Clock()
    line = ProgressLine(stream, interval_s=100.0, clock=clock)
    feed(line, clock, step_events("stage1", 0, 200))
    feed(line, clock, step_events("stage2", 0, 100))
    line.end()
    assert stream.getvalue() == ("section 1/2 stage 1: 200/200 tokens, 2.0 s\n"
                                 "section 1/2 stage 2: 100/100 frames, 1.0 s\n")


def test_piped_output_reports_a_long_step_every_interval():
    """A 25 s step piped with a 10 s interval: lines 10 s and 20 s after its first event, and its end."""
    stream, clock = io.StringIO(), Clock()
    line = ProgressLine(stream, interval_s=10.0, clock=clock)
    feed(line, clock, [Progress("stage2", 0, 1, done, 100, 4.0, (100 - done) / 4.0) for done in range(1, 101)])
    assert stream.getvalue().splitlines() == ["section 1/1 stage 2: 41/100 frames, 10 s, about 15 s left",
                                              "section 1/1 stage 2: 81/100 frames, 20 s, about 5 s left",
                                              "section 1/1 stage 2: 100/100 frames, 25 s"]


def test_note_ends_the_line_under_way_first():
    stream, clock = Terminal(), Clock()
    line = ProgressLine(stream, clock=clock)
    feed(line, clock, step_events("stage1", 0, 200, every=100, last=100))
    line.note("warning: something")
    assert screen(stream.getvalue()) == ["section 1/2 stage 1: 100/200 tokens, 1.0 s, about 1 s left",
                                         "warning: something"]


class Made:
    """The fields of a yue.song.Song that the summary reads."""

    def __init__(self, seed, seconds, done, total):
        self.seed, self.seconds, self.sections_done, self.sections_total = seed, seconds, done, total
        self.timings = {"stage1_s": 12.34, "stage2_s": 3.0, "audio_s": 0.5}


def test_summary_says_where_what_how_long_and_sections_left_out():
    lines = summary([Made(42, 61.04, 2, 2)], [Path("out")], ["mix.wav", "vocal.wav", "instrumental.wav"], 4, 5.0, 21.0)
    assert lines == ["61.0 s of audio, seed 42 -> out/",
                     "files: mix.wav, vocal.wav, instrumental.wav, song.npz, stage1_*.npy (1, T), stage2_*.npy (8, T), "
                     "settings.json",
                     "2 of 4 lyric sections; --segments all for every section",
                     "time: loading models 5.0 s, stage 1 12 s, stage 2 3.0 s, audio 0.5 s; total 21 s"]


def test_summary_of_takes_names_each_take_and_no_hint_when_every_section_is_made():
    lines = summary([Made(7, 4.0, 3, 3), Made(8, 4.0, 3, 3)], [Path("t/take1"), Path("t/take2")], [], 3, 1.0, 9.0)
    assert lines[:2] == ["take 1: 4.0 s of audio, seed 7 -> t/take1/", "take 2: 4.0 s of audio, seed 8 -> t/take2/"]
    assert "3 of 3 lyric sections" in lines and not any("--segments" in text for text in lines)
