"""yue/steps.py: a section's steps in a run: progress events at most a few a second, and stage 1 cut at a deadline
into an `Unfinished` of the section under way."""
import numpy as np
import pytest

from yue.lm.deadline import OutOfTime
from yue.lm.stage1 import SectionTokens, Stage1Partial
from yue.lm.stage2 import Row, RowCodes
from yue.song import Unfinished
from yue.steps import Rate, cut_stage1

HOUR_S = 3600.0  # an interval no test outlasts: every event before the last falls inside it


def test_progress_events_are_throttled_and_the_last_always_goes_out():
    """Within the interval only the step's last event (done == total) reaches the sink; with no interval every
    event does, each naming its stage, section and counts; no sink: nothing to call."""
    events = []
    rate = Rate(events.append, interval=HOUR_S)
    for done in range(1, 11):
        rate.report("stage1", 0, 2, done, 10)
    assert [(e.stage, e.section, e.sections, e.done, e.total) for e in events] == [("stage1", 0, 2, 10, 10)]
    events.clear()
    rate = Rate(events.append, interval=0.0)
    for done in range(1, 4):
        rate.report("stage2", 1, 2, done, 3)
    assert [(e.stage, e.section, e.done) for e in events] == [("stage2", 1, 1), ("stage2", 1, 2), ("stage2", 1, 3)]
    Rate(None).report("stage1", 0, 1, 1, 1)


def test_stage1_stopped_at_its_deadline_is_raised_with_the_section_under_way_and_its_rows():
    """Sections made before the stop pass through; the stop is raised again with an `Unfinished` holding stage 1's
    partial state and the stage-2 rows `rows(section)` gives for that section."""
    partial = Stage1Partial(1, 5, (np.zeros(5, dtype=np.int64),), (True,), (b"",), "cpu")
    made = [SectionTokens(0, "verse", np.zeros(3, dtype=np.int64), np.zeros(3, dtype=np.int64), True)]
    rows = (RowCodes(Row(0, 0, 300), np.zeros((8, 10), dtype=np.int64)),)

    def sections():
        yield made
        raise OutOfTime(partial)

    seen = []
    with pytest.raises(OutOfTime) as stop:
        for section in cut_stage1(sections(), lambda index: rows if index == 1 else ()):
            seen.append(section)
    assert seen == [made]
    state = stop.value.state
    assert isinstance(state, Unfinished) and (state.section, state.stage1, state.sections, state.rows) == (
        1, partial, (), rows)
