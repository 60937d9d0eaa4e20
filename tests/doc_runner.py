"""Run every command and snippet of the docs as written, each block alone: in a fresh copy of the repository with
only the blocks it says it needs run before it.

    python tests/doc_runner.py COPY        # tests/test_docs.py runs this inside its own network namespace

What runs: fenced ```bash and ```python blocks of README.md then docs/*.md (DOC_FILES order). A reader sees the
same blocks; only an HTML comment right above a block (invisible on GitHub and the Hub) tells this runner more, in
fields separated by ";":

    <!-- docs-test: skip: REASON -->   not run (it needs the Hub, a GPU, or it is the test suite itself)
    <!-- docs-test: app -->            starts the app: run in the background (in a fresh copy of its own) until it
                                       answers on its port, and kept running until another app block starts
    <!-- docs-test: name=NAME -->      a name other blocks can need
    <!-- docs-test: needs=A,B -->      the named blocks this one needs: each runs first (with what it needs in
                                       turn) in this block's own fresh copy; a needed app block is (re)started

So a block that works only after an earlier one says so, and a reader who runs it after only those blocks gets
what the test got. A python block whose first line starts with "# continues" runs in the same interpreter as the
block before it (a reader types it into the same session; the comment tells them so); the first block of such a
group names what the group needs. ```json blocks must parse. Any other language is text for the eye and must not
look like a command (test_docs checks).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DOC_FILES = ("README.md", "docs/models.md", "docs/space.md", "docs/bad-inputs.md")
MARKER = re.compile(r"<!--\s*docs-test:\s*(.*?)\s*-->")
FENCE = re.compile(r"^```(\w*)\s*$")
APP_PORT = re.compile(r"--port\s+(\d+)")
DEFAULT_PORT = 7860
BLOCK_SECONDS = 900  # the longest block (a tiny song through the app at the official 3000 tokens per section)
APP_START_SECONDS = 300


@dataclass(frozen=True)
class Block:
    file: str
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    marker: str = ""  # "", "skip" or "app"
    reason: str = ""
    name: str = ""  # what other blocks call it in their needs=
    needs: tuple[str, ...] = ()  # the names of the blocks it needs run before it

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def continues(self) -> bool:
        return self.lang == "python" and self.code.lstrip().startswith("# continues")


def doc_blocks(root: Path, name: str) -> list[Block]:
    """The fenced blocks of one markdown file, each with the docs-test marker on the line above it (if any)."""
    lines = (root / name).read_text(encoding="utf-8").splitlines()
    blocks, index = [], 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        end = next((i for i in range(index + 1, len(lines)) if lines[i].startswith("```")), None)
        if end is None:
            raise ValueError(f"{name}:{index + 1}: a code fence that is never closed")
        above = MARKER.search(lines[index - 1]) if index else None
        fields = marker_fields(above.group(1), f"{name}:{index}") if above else {}
        blocks.append(Block(name, index + 1, opening.group(1), "\n".join(lines[index + 1:end]) + "\n", **fields))
        index = end + 1
    return blocks


def marker_fields(text: str, where: str) -> dict:
    """The Block fields a marker's text sets: "skip: REASON", "app", "name=NAME", "needs=A,B", joined by ";"."""
    if text.startswith("skip"):  # the reason may hold any punctuation: it is the rest of the marker
        return {"marker": "skip", "reason": text.partition(":")[2].strip()}
    fields: dict = {}
    for part in filter(None, (part.strip() for part in text.split(";"))):
        key, equals, value = part.partition("=")
        if part == "app":
            fields["marker"] = "app"
        elif equals and key.strip() == "name":
            fields["name"] = value.strip()
        elif equals and key.strip() == "needs":
            fields["needs"] = tuple(filter(None, (name.strip() for name in value.split(","))))
        else:
            raise ValueError(f"{where}: docs-test marker field {part!r} is none of skip: REASON, app, name=, needs=")
    return fields


def all_blocks(root: Path, files: tuple[str, ...] = DOC_FILES) -> list[Block]:
    return [block for name in files for block in doc_blocks(root, name)]


class App:
    """The app a docs block started, in its own process group so that stopping it stops everything it ran."""

    def __init__(self, block: Block, root: Path, env: dict, log: Path):
        self.block, self.log = block, log
        match = APP_PORT.search(block.code)
        self.port = int(match.group(1)) if match else DEFAULT_PORT
        self.process = subprocess.Popen(["bash", "-e", "-c", block.code], cwd=root, env=env, start_new_session=True,
                                        stdout=log.open("w"), stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + APP_START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.block.where}: the app exited ({self.process.returncode}) before it "
                                   f"answered:\n{tail(self.log)}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=5).close()
                return
            except OSError:
                time.sleep(1)
        raise RuntimeError(f"{self.block.where}: the app did not answer on port {self.port} within "
                           f"{APP_START_SECONDS} s:\n{tail(self.log)}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:]


def run_block(blocks: list[Block], root: Path, env: dict, log: Path) -> None:
    """One bash block, or a python block with the blocks that continue it, run to completion; raises on failure."""
    first = blocks[0]
    # python reads the code from stdin as a reader's pasted session would run: the repository root on sys.path
    command = ["bash", "-e", "-c", first.code] if first.lang == "bash" else [sys.executable, "-"]
    code = "" if first.lang == "bash" else "".join(block.code for block in blocks)
    started = time.monotonic()
    with log.open("w") as out:
        result = subprocess.run(command, cwd=root, env=env, input=code.encode(), stdout=out,
                                stderr=subprocess.STDOUT, timeout=BLOCK_SECONDS)
    spent = time.monotonic() - started
    print(f"{first.where} {first.lang}: rc {result.returncode}, {spent:.0f} s", flush=True)
    if result.returncode:
        raise RuntimeError(f"{first.where}: the {first.lang} block failed (exit {result.returncode}):\n"
                           f"{first.code}\n--- output ---\n{tail(log)}")


def groups(blocks: list[Block]) -> list[list[Block]]:
    """Blocks in running order; a python block that continues the one before joins its group."""
    out: list[list[Block]] = []
    for block in blocks:
        if block.continues and out and out[-1][0].lang == "python" and out[-1][0].file == block.file:
            out[-1].append(block)
        else:
            out.append([block])
    return out


def needed(group: list[Block], named: dict[str, list[Block]]) -> list[list[Block]]:
    """The groups `group` needs, what they need first, each once, in the order they run."""
    order: list[list[Block]] = []

    def visit(current: list[Block], path: tuple[str, ...]) -> None:
        for name in current[0].needs:
            if name not in named:
                raise ValueError(f"{current[0].where}: needs={name}, but no block is named {name!r}")
            if name in path:
                raise ValueError(f"{current[0].where}: needs={name} goes round in a circle")
            visit(named[name], (*path, name))
            if named[name] not in order:
                order.append(named[name])

    visit(group, ())
    return order


def fresh_copy(root: Path, folder: Path) -> Path:
    """A copy of the pristine repository (`root`) for one block, with a cache folder of its own."""
    shutil.copytree(root, folder, symlinks=True)
    return folder


def own_python(folder: Path) -> dict:
    """A virtual environment over this Python's packages for the blocks' `pip install` (the README's installs the
    checkout with `-e .`): what they install stays there, not in this Python, which other runs share. The runner has
    no network: pip takes what is installed (no index) and builds without isolation, with this Python's setuptools
    (the one ensurepip puts in the environment is older than pyproject.toml's). Returns the variables that use it."""
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(folder)], check=True, timeout=300)
    python = folder / "bin" / "python"
    if any(folder.glob("lib/python*/site-packages/setuptools")):  # ensurepip's own (Python 3.11; 3.12 has none)
        subprocess.run([python, "-m", "pip", "uninstall", "-y", "-q", "setuptools"], check=True, timeout=300)
    # "0" is pip's way to switch --no-build-isolation on from the environment (PIP_NO_* options read inverted)
    return {"VIRTUAL_ENV": str(folder), "PATH": f"{folder / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0"}


def run_all(root: Path, logs: Path, files: tuple[str, ...] = DOC_FILES, python: dict | None = None) -> None:
    """Every block of `files`, in order; `python`: variables for the blocks' shell (own_python's)."""
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
           "PYTHONUNBUFFERED": "1", **(python or {})}
    logs.mkdir(parents=True, exist_ok=True)
    work = logs.parent / f"{logs.name}-copies"
    all_groups = groups(all_blocks(root, files))
    named = {group[0].name: group for group in all_groups if group[0].name}
    for group in all_groups:  # an unknown or circular need fails at once, not after minutes of other blocks
        needed(group, named)
    app: App | None = None
    copies = iter(range(10_000))

    def own_env(folder: Path) -> dict:
        return {**env, "XDG_CACHE_HOME": str(folder / ".cache")}  # nothing cached by another block's run

    def start(block: Block) -> App:
        nonlocal app
        if app is not None:
            app.stop()
        folder = fresh_copy(root, work / f"{next(copies):03d}-app")
        app = App(block, folder, own_env(folder), logs / f"app-{block.line}.log")
        app.wait_ready()
        print(f"{block.where} app: answering on port {app.port}", flush=True)
        return app

    try:
        for number, group in enumerate(all_groups):
            block, log = group[0], logs / f"{number:02d}.log"
            if block.marker == "skip" or block.lang not in ("bash", "python", "json"):
                print(f"{block.where} {block.lang or 'text'}: not run ({block.reason or 'text, not a command'})")
                continue
            if block.lang == "json":
                json.loads(block.code)
                continue
            if block.marker == "app":
                start(block)
                continue
            folder = fresh_copy(root, work / f"{next(copies):03d}")
            for before in needed(group, named):
                if before[0].marker == "app":
                    if app is None or app.block != before[0]:
                        start(before[0])
                else:
                    print(f"  first {before[0].where} (needed by {block.where})", flush=True)
                    run_block(before, folder, own_env(folder), log.with_suffix(f".{before[0].line}.log"))
            run_block(group, folder, own_env(folder), log)
            shutil.rmtree(folder, ignore_errors=True)  # kept only when the block failed
    finally:
        if app is not None:
            app.stop()


if __name__ == "__main__":
    folder = Path(sys.argv[1]).resolve()
    run_all(folder, folder.parent / "doc-logs", python=own_python(folder.parent / "doc-python"))
