"""What the Space's tests share: the tiny settings, a launched app on tiny checkpoints, gradio_client helpers, and
hand-made codes for tests without models."""
import socket
from pathlib import Path

import numpy as np
import pytest

from yue.lm.stage1 import Stage1Tokens
from yue.song import Song, SongCodes


LYRICS = "[verse]\nsmall lights on the water\n\n[chorus]\nrise and shine\n"
# The shared settings of every endpoint, tiny: 40 tokens = 20 frames = 0.4 s per section.
SMALL = dict(language="en", sections=2, max_new_tokens=40, min_new_tokens=4, guidance_first=1.5, guidance_later=1.2,
             top_p=0.93, temperature=1.0, repetition_penalty=1.1, seed=42, random_seed=False, precision="auto",
             output_format="wav")
TEST_LIMITS = dict(max_reference_seconds=12.0)  # so a 15 s upload shows the length message


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def has_codec() -> bool:
    import app

    return app.codec_available()


def start_app(tmp_root: Path, **build):
    """Write tiny checkpoints, build the demo on them and launch it on a free local port; returns (url, demo)."""
    import app
    from yue.config import Limits
    from yue.weights.loading import ModelCache

    get_pipeline = app.pipelines(ModelCache(), app.tiny_folder(str(tmp_root / "tiny")))
    demo = app.build_demo(get_pipeline, output_root=tmp_root / "outputs", tiny=True, limits=Limits(**TEST_LIMITS),
                          **build)
    port = free_port()
    app.launch(demo, "127.0.0.1", port, prevent_thread_lock=True, quiet=True, ssr_mode=False)
    return f"http://127.0.0.1:{port}/", demo


def song(client, **overrides):
    return client.predict(**{"genres": "pop piano uplifting", "lyrics": LYRICS, **SMALL, **overrides},
                          api_name="/lyrics_to_song")


def app_error(call) -> str:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as error:
        call()
    return str(error.value)


def check_audio(paths, frames: int, fmt: str = "wav") -> None:
    """Real 44.1 kHz files as long as the codes (50 frames a second)."""
    import soundfile

    for path in paths:
        assert path.endswith(f".{fmt}")
        info = soundfile.info(path)
        assert info.samplerate == 44100
        assert abs(info.duration - frames / 50) < 0.05, (path, info.duration, frames)


def every_take(client) -> list[dict]:
    """/takes of this client's last run: each take's number, seed and local files (by the names in its table)."""
    files, table = client.predict(api_name="/takes")
    local = {Path(path).name: path for path in files}
    assert len(local) == len(files)  # every file name is its own
    return [{key: local[value] if key in ("mix", "vocal", "instrumental", "bundle") and value else value
             for key, value in row.items()} for row in table]


def same_audio(first: str, second: str) -> bool:
    import soundfile

    return np.array_equal(soundfile.read(first)[0], soundfile.read(second)[0])


def download(url: str, path: Path) -> Path:
    import httpx

    path.write_bytes(httpx.get(url).raise_for_status().content)
    return path


def codes(*section_frames: int, labels=None) -> SongCodes:
    frames = sum(section_frames)
    return SongCodes(Stage1Tokens(np.arange(frames), np.arange(frames) + 1000, tuple(section_frames),
                                  labels or tuple(f"s{i}" for i in range(len(section_frames)))))


def token_only_song(stage1_codes: SongCodes, done: int, total: int, seed: int = 42) -> Song:
    empty = np.zeros(0, dtype=np.float32)
    return Song(44100, empty, empty, empty, stage1_codes, seed, done, total, {"stage1_s": 1.0})
