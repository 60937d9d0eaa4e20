"""Run every command and snippet of the docs as written, in order, in the folder given (a fresh copy of the repo).

    python tests/doc_runner.py COPY        # tests/test_docs.py runs this inside its own network namespace

What runs: fenced ```bash and ```python blocks of README.md then docs/*.md (DOC_FILES order). A reader sees the
same blocks; only an HTML comment right above a block (invisible on GitHub and the Hub) tells this runner more:

    <!-- docs-test: skip: REASON -->   not run (it needs the Hub, a GPU, or it is the test suite itself)
    <!-- docs-test: app -->            starts the app: run in the background until it answers on its port, and
                                       kept running for the blocks after it (until the next app block)

A python block whose first line starts with "# continues" runs in the same interpreter as the block before it (a
reader types it into the same session; the comment tells them so). ```json blocks must parse. Any other language
is text for the eye and must not look like a command (test_docs checks).
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DOC_FILES = ("README.md", "docs/models.md", "docs/space.md", "docs/bad-inputs.md")
MARKER = re.compile(r"<!--\s*docs-test:\s*(skip|app)\s*(?::\s*(.*?))?\s*-->")
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
        blocks.append(Block(name, index + 1, opening.group(1), "\n".join(lines[index + 1:end]) + "\n",
                            above.group(1) if above else "", (above.group(2) or "") if above else ""))
        index = end + 1
    return blocks


def all_blocks(root: Path) -> list[Block]:
    return [block for name in DOC_FILES for block in doc_blocks(root, name)]


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


def run_all(root: Path, logs: Path) -> None:
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
           "PYTHONUNBUFFERED": "1"}
    logs.mkdir(parents=True, exist_ok=True)
    app: App | None = None
    try:
        for number, group in enumerate(groups(all_blocks(root))):
            block, log = group[0], logs / f"{number:02d}.log"
            if block.marker == "skip" or block.lang not in ("bash", "python", "json"):
                print(f"{block.where} {block.lang or 'text'}: not run ({block.reason or 'text, not a command'})")
                continue
            if block.lang == "json":
                json.loads(block.code)
            elif block.marker == "app":
                if app is not None:
                    app.stop()
                app = App(block, root, env, log)
                app.wait_ready()
                print(f"{block.where} app: answering on port {app.port}", flush=True)
            else:
                run_block(group, root, env, log)
    finally:
        if app is not None:
            app.stop()


if __name__ == "__main__":
    folder = Path(sys.argv[1]).resolve()
    run_all(folder, folder.parent / "doc-logs")
