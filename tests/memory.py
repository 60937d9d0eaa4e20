"""Peak memory of one call, measured in a fresh Python process: the growth of its peak RSS (getrusage's ru_maxrss,
which only ever rises) from just before the call to just after it, so what the imports cost is not counted."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, os, resource
{setup}
# Measured in a child forked here: a process started from a big one (pytest with torch loaded) inherits that
# process's peak through exec on Linux, which would hide any growth below it; fork starts from this small one.
readable, writable = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(readable)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        {call}
        outcome = "returned"
    except Exception as error:
        outcome = f"{{type(error).__name__}}: {{error}}"
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    os.write(writable, json.dumps({{"growth_mb": (after - before) / 1024, "before_mb": before / 1024,
                                    "outcome": outcome}}).encode())
    os._exit(0)
os.close(writable)
report = b"".join(iter(lambda: os.read(readable, 1 << 16), b""))
os.waitpid(pid, 0)
print(report.decode())
"""

def peak_growth_mb(setup: str, call: str) -> tuple[float, str]:
    """(MB the process's peak RSS grew by during `call`, what `call` did: "returned" or "Error: message")."""
    code = PROBE.format(setup=setup, call=call)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["growth_mb"], result["outcome"]
