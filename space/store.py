"""What the Space keeps between requests: one private output folder per run (deleted when old), each session's stop
flag, the pipelines over the one model cache (tiny checkpoints included), and the examples. No gradio, no spaces."""
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path

from .jobs import ModelChoice
from yue.pipeline import Pipeline
from yue.weights.loading import ModelCache

log = logging.getLogger("yue.app")

# The precision tiny checkpoints run in, whatever a request asks: the model cache's "auto" on the cpu
TINY_PRECISION = "fp32"
# Sessions whose state the app keeps (Gradio's state_session_capacity, 10 000 by default; and Studio's record of
# each session's last run): the ones used last. A session costs ~0.7 MB there (its copy of the page's config and
# its rendered history), so the app's memory no longer grows with every visitor; a page unused while 128 others
# were used loses its server-side state (its last run's takes), not its history (kept in the browser).
SESSIONS_KEPT = 128
OUTPUT_MAX_AGE_HOURS = 6.0  # outputs are for downloading now, not for keeping: free the disk of a shared Space
EXAMPLE_LANGUAGE = {"en": "en", "zh": "zh", "ja": "jp-kr", "ko": "jp-kr"}  # example folder prefix -> checkpoint


class OutputStore:
    """One private folder (mode 0o700) per request under one root; folders older than `max_age_hours` are deleted
    whenever a new one is made, so a long-running Space does not fill its disk."""

    def __init__(self, root: Path, max_age_hours: float = OUTPUT_MAX_AGE_HOURS):
        self.root, self.max_age_s = Path(root), max_age_hours * 3600
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root.chmod(0o700)  # also when it already existed; fails loudly if another user owns it

    def new_folder(self) -> Path:
        self.clean()
        return Path(tempfile.mkdtemp(prefix="song-", dir=self.root))  # mkdtemp makes it 0o700

    def clean(self) -> None:
        limit = time.time() - self.max_age_s
        for folder in self.root.glob("song-*"):
            try:
                if folder.stat().st_mtime < limit:
                    shutil.rmtree(folder, ignore_errors=True)
            except FileNotFoundError:  # another request cleaned it first
                pass


class Recent(OrderedDict):
    """A dict of at most `most` keys: setting a key makes it the newest, and the oldest goes first."""

    def __init__(self, most: int):
        super().__init__()
        self.most = most

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.most:
            self.popitem(last=False)


class Stops:
    """Each session's stop flag for its current run. The flag is a file in the run's folder, so a ZeroGPU worker (a
    forked process) sees it too; the pipeline's `cancel()` looks at it between tokens."""

    def __init__(self):
        self._lock = threading.Lock()
        self._flags: dict[str, Path] = {}

    def start(self, session: str, folder: Path) -> Path:
        with self._lock:
            self._flags[session] = folder / "STOP"
        return folder / "STOP"

    def stop(self, session: str) -> bool:
        with self._lock:
            flag = self._flags.get(session)
        if flag is None:
            return False
        flag.touch()
        return True

    def finish(self, session: str, flag: Path) -> None:
        with self._lock:
            if self._flags.get(session) == flag:
                del self._flags[session]


def codec_available() -> bool:
    return importlib.util.find_spec("yue.weights.codec_loading") is not None


def pipelines(cache: ModelCache, tiny: Path | None = None, device: str | None = None):
    """`get_pipeline(choice)` over the one model cache: the same choice gets the loaded models back; another
    language or mode swaps only the stage-1 LM. Tiny checkpoints serve every choice (on the CPU)."""

    def get(choice: ModelChoice) -> Pipeline:
        if tiny is None:
            return Pipeline(cache.get(mode=choice.mode, language=choice.language, precision=choice.precision,
                                      device=device))
        codec = tiny / "xcodec_mini_infer"  # until the codec lands: a token-only pipeline (no audio)
        codec = codec if codec_available() and codec.is_dir() else False
        return Pipeline(cache.get(stage1=tiny / "s1", stage2=tiny / "s2", codec=codec, device="cpu"))

    return get


def tiny_folder(value: str) -> Path:
    """`--tiny auto`: a cache folder written once; `--tiny DIR`: that folder (written if empty)."""
    from yue.weights.tiny import write_tiny

    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "yue-space" / "tiny"
    folder = cache if value == "auto" else Path(value)
    complete = (folder / "README.txt").is_file()  # write_tiny writes it last
    if not complete or (codec_available() and not (folder / "xcodec_mini_infer").is_dir()):
        log.info("writing tiny checkpoints to %s", folder)
        write_tiny(folder, codec=codec_available())
    return folder


def load_examples(folder: Path) -> list[tuple[str, list[str]]]:
    """(name, [genres, lyrics, language]) of every example folder, e.g. examples/en-paper-lanterns/."""
    examples = []
    for song in sorted(folder.glob("*/lyrics.txt")):
        name = song.parent.name
        language = EXAMPLE_LANGUAGE.get(name.split("-")[0], "en")
        genres = (song.parent / "genre.txt").read_text(encoding="utf-8").strip()
        examples.append((name, [genres, song.read_text(encoding="utf-8").strip() + "\n", language]))
    return examples
