"""What ZeroGPU says when it refuses to start a call (the visitor's quota, no GPU free) or a call's worker died or
raised, read from the words of spaces 0.51.3 (zero/client.py `schedule` and zero/wrappers.py)."""
from __future__ import annotations

import re

QUOTA = re.compile(r"exceeded your .*quota|reached its GPU limit|No GPU was available", re.IGNORECASE)
LEFT = re.compile(r"\((\d+)s requested vs\. (\d+)s left\)")
WORKER_ERROR = "ZeroGPU worker error"  # wrappers.py: a worker that died ("GPU task aborted") or raised (class name)


def message(error: BaseException) -> str:
    """An error's text (a gradio Error's str() is its message quoted)."""
    return str(getattr(error, "message", None) or error)


def failed_call(error: BaseException) -> bool:
    """Whether `error` is spaces saying a call's worker died (ZeroGPU killed it at its booked duration, or the
    process crashed: "GPU task aborted") or raised (the exception's class name): both raise a gradio Error titled
    "ZeroGPU worker error" (wrappers.py `gradio_handler`)."""
    return str(getattr(error, "title", "")) == WORKER_ERROR


def quota_refused(error: BaseException) -> bool:
    """Whether `error` is ZeroGPU refusing to start a call: spaces raises a gradio Error titled "ZeroGPU quota
    exceeded" whose text says "You have exceeded your free ZeroGPU quota (60s requested vs. 20s left)..." (client.py
    `schedule`), "Space app has reached its GPU limit" for a visitor without a token, or no GPU came free ("ZeroGPU
    queue timeout", "ZeroGPU client error")."""
    title = str(getattr(error, "title", "")).lower()
    return title.startswith("zerogpu") and not failed_call(error) or bool(QUOTA.search(message(error)))


def quota_left(error: BaseException) -> int | None:
    """The visitor seconds left that a refusal names ("(60s requested vs. 20s left)"), or None."""
    found = LEFT.search(message(error))
    return None if found is None else int(found.group(2))
