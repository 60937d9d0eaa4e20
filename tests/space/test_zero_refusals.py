"""space.zero_refusals: spaces' words for a refused call and for a call whose worker died or raised."""
from space import zero_refusals


def test_refusals_and_failed_calls_are_recognised_by_spaces_words():
    """spaces' quota error (a gradio Error titled "ZeroGPU quota exceeded"; its text, or "No GPU was available")
    is a refusal, and the seconds left it names are read; a worker that died or raised ("ZeroGPU worker error") is
    a failed call; other errors are neither."""

    class Titled(Exception):
        def __init__(self, title, message):
            super().__init__(message)
            self.title, self.message = title, message

    words = "You have exceeded your free ZeroGPU quota (60s requested vs. 20s left). Try again in 3:00:00."
    assert zero_refusals.quota_refused(Exception(words)) and zero_refusals.quota_left(Exception(words)) == 20
    assert zero_refusals.quota_refused(Titled("ZeroGPU quota exceeded", "Space app has reached its GPU limit."))
    assert zero_refusals.quota_left(Titled("ZeroGPU quota exceeded", "Space app has reached its GPU limit.")) is None
    assert zero_refusals.quota_refused(Titled("ZeroGPU queue timeout", "No GPU was available after 60s."))
    aborted = Titled("ZeroGPU worker error", "GPU task aborted")
    assert zero_refusals.failed_call(aborted) and not zero_refusals.quota_refused(aborted)
    assert zero_refusals.failed_call(Titled("ZeroGPU worker error", "KeyError"))
    assert not zero_refusals.quota_refused(RuntimeError("CUDA out of memory"))
    assert not zero_refusals.failed_call(RuntimeError("CUDA out of memory"))
