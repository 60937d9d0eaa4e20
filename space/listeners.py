"""Whether anyone still listens for a queued run, from Gradio's queue: a run whose client never opened its event
stream (a raw /queue/join, a /call POST whose GET never comes) is dropped when it reaches the front of the queue,
before any model work; the campaign's 17 of 20 unheard runs ran, and a real user waited 45 s behind them.

Gradio 6.31 queues every message of a session (estimates while the run waits, "process starts" when it begins) in
`Blocks._queue.pending_messages_per_session[session_hash]`, and the session's event stream takes them out as they
come. Messages still there after a client had its chance to read them mean nobody reads: the stream was never
opened (a stream that closes makes Gradio drop the session's runs itself). These are Gradio's private attributes:
tests/space/test_listeners.py runs this against the real queue, so a Gradio upgrade that changes them fails there.
"""
from __future__ import annotations

import time
from typing import Callable

# From joining the queue, the time a client has to open its event stream (gradio_client and the page open it at
# once; Gradio's curl example for /call does too).
GRACE_S = 5.0
# A listening client's stream reads a new message within this (Gradio's own task on the server's event loop).
SETTLE_S = 0.3
POLL_S = 0.01


class Listeners:
    """`gone(session)`: whether the client of the session's run now starting has read none of its messages, after
    its grace time. Sessions Gradio has no message queue for (MCP calls, Python callers) are never called gone."""

    def __init__(self, blocks, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.blocks, self.clock, self.sleep = blocks, clock, sleep

    def gone(self, session: str) -> bool:
        queue = getattr(self.blocks, "_queue", None)
        messages = None if queue is None else queue.pending_messages_per_session.get(session)
        if messages is None:
            return False
        joined = min((event.enqueue_time for job in queue.active_jobs if job for event in job
                      if event.session_hash == session), default=self.clock())
        deadline = max(self.clock() + SETTLE_S, joined + GRACE_S)
        while messages.qsize() and self.clock() < deadline:
            self.sleep(POLL_S)
        return messages.qsize() > 0
