"""yue/eta.py: the time left in a step, from its recent speed; no number that creeps up update after update."""
from yue.eta import Eta, EtaSettings, describe_left


def feed(eta: Eta, speeds, total: int, interval: float = 0.25, step="s1") -> list:
    """Events every `interval` s at the speed of each entry of `speeds` (units/s); the answers, in order."""
    answers, done, now = [eta.update(step, 0, total, 0.0)], 0.0, 0.0
    for speed in speeds:
        now += interval
        done = min(done + speed * interval, total)
        answers.append(eta.update(step, int(done), total, now))
    return answers


def test_no_number_before_the_step_has_run_a_few_seconds():
    """The first 3 s of a step (prefill, first tokens) give None: 'estimating'."""
    answers = feed(Eta(), [100.0] * 20, 3000)  # 5 s of events
    assert answers[:12] == [None] * 12 and all(a is not None for a in answers[13:])


def test_a_steady_speed_gives_the_true_time_left_counting_down():
    """At a constant 100 units/s, 3000 units: the numbers are within 5% of the truth and never go up."""
    answers = feed(Eta(), [100.0] * 80, 3000)  # 20 s
    shown = [(i, a) for i, a in enumerate(answers) if a is not None]
    for index, left in shown:
        truth = (3000 - 100 * 0.25 * index) / 100
        assert abs(left - truth) <= 0.05 * truth + 0.5, (index, left, truth)
    assert all(b <= a for (_, a), (_, b) in zip(shown, shown[1:]))


def test_a_machine_getting_busier_never_shows_a_number_rising_update_after_update():
    """The speed falls 2% a second (other work on the machine): a rate averaged from the step's start makes the time
    left rise at most updates; here every shown number is at most the one before it unless 'estimating' came in
    between, and that happens rarely (each time the speed must settle twice as long)."""
    speeds = [200.0 * 0.98 ** (i * 0.25) for i in range(400)]  # 100 s
    answers = feed(Eta(), speeds, 20_000)
    rises = [i for i in range(1, len(answers)) if answers[i] is not None and answers[i - 1] is not None
             and answers[i] > answers[i - 1]]
    assert rises == []
    restarts = sum(1 for a, b in zip(answers, answers[1:]) if a is not None and b is None)
    assert 1 <= restarts <= 4
    # the cumulative-average estimate, for comparison, rises at most updates
    done, cumulative = 0.0, []
    for index, speed in enumerate(speeds, start=1):
        done += speed * 0.25
        cumulative.append((20_000 - done) / (done / (index * 0.25)))
    assert sum(b > a for a, b in zip(cumulative[40:], cumulative[41:])) > 100


def test_a_new_step_starts_estimating_again():
    """Each step (a stage of a section) has its own speed: the first event of a new step answers None."""
    eta = Eta(EtaSettings(settle_s=1.0))
    assert feed(eta, [50.0] * 8, 1000)[-1] is not None
    assert eta.update("s2", 0, 500, 100.0) is None and eta.rate is None


def test_the_time_left_in_words():
    assert describe_left(None) == "estimating the time left…"
    assert describe_left(41.6) == "about 42 s left"
    assert describe_left(125.2, upper_bound=True) == "at most about 2 min 5 s left"
