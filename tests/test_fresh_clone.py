"""A fresh clone passes its own tests: the committed HEAD, cloned into an empty folder with nothing beside it, runs
the tests that compare against the official files in tests/data, and every one of them passes.

Only what is committed travels: a data file left out of git fails here, not on the next person's machine."""
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import ROOT

# The tests that read tests/data: the tokenizer and golden ids, the prompts, the tiny tokenizer's piece layout, and
# the official codec configs building the official sizes (the slower codec-loading tests are left to the full run).
SUBSET = ("tests/text/test_tokens.py", "tests/text/test_prompt.py", "tests/weights/test_tiny.py",
          "tests/weights/test_codec_loading.py::test_official_sizes_have_the_official_keys_shapes_and_parameter_counts")
# What conftest sets before anything imports gradio or huggingface_hub.
QUIET = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def git(*args: str, cwd: Path) -> str:
    # safe.directory: CI may run as another user than the one who owns the checkout; we only read it.
    done = subprocess.run(["git", "-c", f"safe.directory={ROOT}", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"git {' '.join(args)} failed: {done.stderr}"
    return done.stdout.strip()


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """The committed HEAD checked out in an empty temporary folder (no shared/ or anything else beside it)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout (or no git): there is no committed HEAD to clone")
    head = git("rev-parse", "HEAD", cwd=ROOT)
    parent = tmp_path_factory.mktemp("fresh")
    folder = parent / "yue-space"
    git("clone", "--quiet", "--no-checkout", str(ROOT), str(folder), cwd=parent)
    git("checkout", "--quiet", head, cwd=folder)
    assert sorted(p.name for p in parent.iterdir()) == ["yue-space"]
    return folder


def run_in(folder: Path, *args: str, timeout: float) -> subprocess.CompletedProcess:
    """Python in `folder` with the environment the README's command has: no PYTHONPATH leading elsewhere."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | QUIET
    return subprocess.run([sys.executable, *args], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_the_clone_imports_its_own_package(clone):
    """The subset below tests the clone's yue, not this checkout's (find_spec locates it without importing)."""
    found = run_in(clone, "-c", "import importlib.util; print(importlib.util.find_spec('yue').origin)", timeout=60)
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()) == clone / "yue" / "__init__.py"
    assert importlib.util.find_spec("yue").origin != found.stdout.strip()


def test_the_data_tests_pass_in_a_fresh_clone(clone):
    """Every selected test passes there: none fails, errors or skips (as they did for missing reference files)."""
    run = run_in(clone, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", *SUBSET, timeout=180)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    summary = output.strip().splitlines()[-1]
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", summary)}
    assert set(counts) <= {"passed", "warning", "warnings"}, summary
    outcomes = re.findall(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\S* (\S+)", output, flags=re.MULTILINE)
    assert {outcome for outcome, _ in outcomes} == {"PASSED"}, output[-4000:]
    assert len(outcomes) == counts["passed"] >= 30
    for selected in SUBSET:
        assert any(test.startswith(selected) for _, test in outcomes), f"nothing from {selected} ran"
