"""The docs are tests: every ```bash and ```python block of README.md and docs/*.md runs as written, in order, in a
fresh copy of the repository (tests/doc_runner.py), and passes. A block that cannot run here (the Hub, a GPU, the
test suite itself) says why in a marker the runner reads, and the fast tests below keep those few and honest."""
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests import ROOT
from tests.doc_runner import DEFAULT_PORT, DOC_FILES, all_blocks, groups, needed, run_all

RUN = ("bash", "python")
# The only reasons a block may be left out; each is about this machine, not about the block.
REASONS = ("needs the Hub", "needs a CUDA GPU", "the test suite itself", "needs a Hugging Face account")
COMMAND_STARTS = ("python ", "pip ", "hf ", "git ", "$ ", "from ", "import ")


def test_every_doc_file_is_read_and_every_block_is_run_or_says_why():
    """Each docs file exists; each block is bash, python or json (config), or plain text that holds no command; a
    block left out names one of the allowed reasons; an app block is a bash block that starts app.py."""
    blocks = all_blocks(ROOT)
    assert {block.file for block in blocks} <= set(DOC_FILES)
    for block in blocks:
        if block.lang in RUN:
            if block.marker == "skip":
                assert any(reason in block.reason for reason in REASONS), f"{block.where}: {block.reason!r}"
            if block.marker == "app":
                assert block.lang == "bash" and "python app.py" in block.code, block.where
        elif block.lang == "json":
            json.loads(block.code)
        else:
            assert block.marker == "", f"{block.where}: a marker on a block that is never run"
            starts = [line for line in block.code.splitlines() if line.lstrip().startswith(COMMAND_STARTS)]
            assert not starts, f"{block.where}: looks like a command in a ```{block.lang} block: {starts[0]!r}"


def needs(block) -> set[str]:
    """What a block's own text needs that this machine lacks: official weights from the Hub (a generate or app run
    without --tiny, from_pretrained, hf download), a CUDA GPU, a Hub account, or it runs the test suite."""
    found = set()
    for line in block.code.splitlines():
        command = line.split("#")[0]  # a comment may name what the line does not run
        official = ("python -m yue generate" in command or "python app.py" in command) and "--tiny" not in command
        if official or "from_pretrained(" in command or command.startswith("hf download"):
            found.add("needs the Hub")
        if ("bench.gpu" in command and "--smoke" not in command) or '"cuda' in command:
            found.add("needs a CUDA GPU")
        if "HfApi()." in command:
            found.add("needs a Hugging Face account")
        if "pytest" in command:
            found.add("the test suite itself")
    return found


def test_a_block_is_left_out_only_when_its_text_needs_what_the_marker_says():
    """A skipped block needs the Hub, a GPU, an account or is the suite (read from its commands); a block that needs
    none of these runs. So a runnable example cannot be skipped by a stray marker."""
    for block in all_blocks(ROOT):
        if block.lang not in RUN:
            continue
        found = needs(block)
        if block.marker == "skip":
            assert any(reason in block.reason for reason in found), f"{block.where}: {block.reason!r} but needs {found}"
        else:
            assert not found, f"{block.where} needs {found} but is run"


def test_a_python_block_continues_only_a_python_block_of_its_own_file():
    """'# continues' joins the python block before it in the same file; anything else starts a fresh interpreter."""
    for group in groups(all_blocks(ROOT)):
        assert len({block.file for block in group}) == 1
        assert all(block.continues for block in group[1:])
        assert not group[0].continues, f"{group[0].where}: continues nothing"


def test_every_needs_names_a_block_and_the_blocks_that_need_one_say_so():
    """Each needs= names a block of the docs (no circle); the README's Python block needs the tiny checkpoints and
    nothing else, and the docs' client examples need the app they call."""
    blocks = groups(all_blocks(ROOT))
    named = {group[0].name: group for group in blocks if group[0].name}
    for group in blocks:
        needed(group, named)  # raises for an unknown name or a circle
    python = next(group for group in blocks if "Pipeline.tiny(" in group[0].code)
    assert [before[0].name for before in needed(python, named)] == ["tiny"]
    clients = [group for group in blocks if "Client(" in group[0].code and group[0].marker != "skip"]
    assert clients and all(any(named[name][0].marker == "app" for name in group[0].needs) for group in clients)


SELF_CONTAINED = """<!-- docs-test: name=writer -->
```bash
mkdir -p made && echo yes > made/it
```

```bash
test ! -e made/it   # a block that needs nothing sees a fresh copy, not what the writer made
```

<!-- docs-test: needs=writer -->
```python
print(open("made/it").read())
```
"""


def test_each_block_runs_in_a_fresh_copy_with_only_the_blocks_it_needs(tmp_path):
    """The runner itself on a small document: the second block does not see the first block's file; the third,
    which needs the first, does (each in its own copy; the original copy stays untouched)."""
    root = tmp_path / "repo"
    root.mkdir()
    (root / "DOC.md").write_text(SELF_CONTAINED)
    run_all(root, tmp_path / "logs", ("DOC.md",))
    assert not (root / "made").exists()
    (root / "DOC.md").write_text(SELF_CONTAINED.replace("needs=writer", "needs=nobody"))
    with pytest.raises(ValueError, match="needs=nobody, but no block is named 'nobody'"):
        run_all(root, tmp_path / "logs2", ("DOC.md",))


def working_copy(folder: Path) -> Path:
    """What a clone of this working tree holds: tracked and untracked-but-not-ignored files, nothing else."""
    listed = subprocess.run(["git", "-c", f"safe.directory={ROOT}", "ls-files", "-z", "-co", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True, timeout=60).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
    return folder


def isolated_network() -> list[str] | None:
    """`unshare -rn`: a private loopback, so the docs' app takes port 7860 even while another copy of the app (the
    README's, started by a developer) holds it here; None where the machine does not allow it."""
    if shutil.which("unshare") is None:
        return None
    prefix = ["unshare", "-rn", "sh", "-c", 'ip link set lo up && exec "$@"', "unshare"]  # loopback starts down
    probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=30)
    return prefix if probe.returncode == 0 and shutil.which("ip") else None


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_every_command_and_snippet_in_the_docs_runs_as_written(tmp_path):
    """In a fresh copy with a fresh cache, every block the docs show runs in order and exits 0: installs, the app in
    tiny mode (left running for the client snippets), the CLI, the Python API and the gradio_client examples."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: no list of the files a clone holds")
    prefix = isolated_network()
    if prefix is None and not port_free(DEFAULT_PORT):
        pytest.skip(f"port {DEFAULT_PORT} is taken and this machine has no private network namespaces (unshare)")
    copy = working_copy(tmp_path / "yue-space")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), GRADIO_TEMP_DIR=str(tmp_path / "gradio"))
    run = subprocess.run([*(prefix or []), sys.executable, "tests/doc_runner.py", str(copy)], cwd=copy, env=env,
                         capture_output=True, text=True, timeout=3600)
    print(run.stdout)
    assert run.returncode == 0, (run.stdout + run.stderr)[-8000:]
