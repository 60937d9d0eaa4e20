"""yue.weights.console: torchao's start-up lines (its optional kernels that cannot load here, PyTorch's note on
each enum it registers) stay off the console of the CLI; every other record of those loggers still shows."""
import subprocess
import sys

from tests import ROOT

NOISE = ("Failed to load", "is an Enum subclass and is now natively supported")


def test_a_cli_model_run_prints_no_torchao_start_up_lines(tiny_dir, tmp_path):
    """Weak answer 14: every CLI model run printed torchao's "Failed to load …/_C_mxfp8….so" lines first (and here
    PyTorch's enum notes). A generate on tiny checkpoints, int8 (torchao's own precision), prints none of them."""
    done = subprocess.run([sys.executable, "-m", "yue", "generate", "--tiny", str(tiny_dir), "--genre", "pop",
                           "--lyrics", "[verse]\nla la\n", "--max-new-tokens", "10", "--min-new-tokens", "2",
                           "--precision", "int8", "--out", str(tmp_path / "song")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "stage 1 int8" in done.stderr  # torchao did its work
    assert not [line for line in done.stderr.splitlines() if any(noise in line for noise in NOISE)], done.stderr


def test_only_the_import_is_filtered_and_only_those_messages():
    """During the import the two patterns go to yue's debug log; after it, the same loggers print as before, and a
    record of another message was never held back."""
    code = """
import logging
from yue.weights import console
console.import_torchao_quietly()
logging.getLogger("torchao").warning("Failed to load /x/torchao/_C_late.so: after the import")
logging.getLogger("torchao").warning("another torchao warning")
for name, pattern in console.IMPORT_NOISE:
    assert not logging.getLogger(name).filters, name
moved = console.Moved(console.IMPORT_NOISE[0][1])
record = lambda text: logging.LogRecord("torchao", logging.WARNING, "", 0, text, None, None)
assert not moved.filter(record("Failed to load /a/torchao/_C_mxfp8.cpython-310-x86_64-linux-gnu.so: Could not"))
assert moved.filter(record("Failed to load the model"))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "after the import" in done.stderr and "another torchao warning" in done.stderr
    assert "_C_mxfp8" not in done.stderr
