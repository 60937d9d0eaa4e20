"""Peak memory of one call, measured in a fresh Python process: the growth of its peak RSS (getrusage's ru_maxrss,
which only ever rises) from just before the call to just after it, so what the imports cost is not counted."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, os, resource, time
{setup}
# Measured in a child forked here: a process started from a big one (pytest with torch loaded) inherits that
# process's peak through exec on Linux, which would hide any growth below it; fork starts from this small one.
readable, writable = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(readable)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started, value = time.perf_counter(), None
    try:
        value = {call}
        outcome = "returned"
    except Exception as error:
        outcome = f"{{type(error).__name__}}: {{error}}"
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    os.write(writable, json.dumps({{"growth_mb": (after - before) / 1024, "before_mb": before / 1024,
                                    "seconds": seconds, "outcome": outcome,
                                    "value": value if isinstance(value, (int, float, str)) else None}}).encode())
    os._exit(0)
os.close(writable)
report = b"".join(iter(lambda: os.read(readable, 1 << 16), b""))
os.waitpid(pid, 0)
print(report.decode())
"""


def measure(setup: str, call: str, code: Path = ROOT) -> dict:
    """What the expression `call` costs after `setup`, in a fresh process running the checkout `code`: growth_mb
    (of the peak RSS), seconds, outcome ("returned" or "Error: message") and value (when a number or text)."""
    done = subprocess.run([sys.executable, "-c", PROBE.format(setup=setup, call=call)], cwd=code, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(code)})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def peak_growth_mb(setup: str, call: str) -> tuple[float, str]:
    """(MB the process's peak RSS grew by during `call`, what `call` did: "returned" or "Error: message")."""
    result = measure(setup, call)
    return result["growth_mb"], result["outcome"]
