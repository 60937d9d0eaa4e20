"""python -m yue: each command works from files and fails with a clear message and a non-zero exit code."""
import json
import subprocess
import sys

import numpy as np
import pytest

from yue import official
from yue.cli import main


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yue", *args], capture_output=True, text=True, timeout=300)


def test_tiny_writes_checkpoints_offline(tmp_path):
    result = run("tiny", str(tmp_path / "t"), "--no-codec")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "t" / "s1" / "tokenizer.model").is_file()
    assert (tmp_path / "t" / "s2" / "config.json").is_file()


def test_prompt_saves_every_section_prompt(tiny_lm_dir, tmp_path, tiny_tokenizer):
    lyrics = tmp_path / "lyrics.txt"
    lyrics.write_text("[verse]\nhello\n\n[chorus]\nla la")
    out = tmp_path / "ids.json"
    assert main(["prompt", "--tiny", str(tiny_lm_dir), "--genre", "pop", "--lyrics-file", str(lyrics),
                 "--out", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["labels"] == ["verse", "chorus"] and len(payload["sections"]) == 2
    assert payload["sections"][0][-2:] == [32001, 32016]


def test_prompt_with_reference_codes_uses_icl_layout(tiny_lm_dir, tmp_path):
    codes = tmp_path / "ref.npy"
    np.save(codes, np.arange(200).reshape(1, -1) % 1024)
    out = tmp_path / "ids.json"
    assert main(["prompt", "--tiny", str(tiny_lm_dir), "--genre", "pop", "--lyrics", "[verse]\nhi",
                 "--reference", str(codes), "--reference-end", "1", "--out", str(out)]) == 0
    first = json.loads(out.read_text())["sections"][0]
    assert 45334 + 49 in first and 45334 + 50 not in first  # 1 s window = 50 frames


def test_stage2_command_matches_the_official_algorithm(tiny_lm_dir, tmp_path, stage2_model):
    codes = np.random.default_rng(0).integers(0, 1024, (1, 12))
    np.save(tmp_path / "c.npy", codes)
    assert main(["stage2", str(tmp_path / "c.npy"), "--model", str(tiny_lm_dir / "s2"),
                 "--out", str(tmp_path / "o.npy")]) == 0
    filled = np.load(tmp_path / "o.npy")
    np.testing.assert_array_equal(filled, official.stage2_generate(stage2_model, codes[0]))


@pytest.mark.parametrize("args, message", [
    (["prompt", "--genre", "pop", "--lyrics", "no tags", "--out", "x.json"], "no section tags"),
    (["stage2", "missing.npy", "--model", "m", "--out", "o.npy"], "codes file not found: missing.npy"),
    (["generate", "--tiny", "nowhere", "--genre", "pop", "--lyrics", "[verse]\nx"], "holds no tiny checkpoints"),
    (["prompt", "--genre", "pop", "--out", "x.json"], "give the lyrics"),
])
def test_bad_input_exits_non_zero_with_a_clear_message(tiny_lm_dir, tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    if args[0] == "prompt":
        args = args + ["--tiny", str(tiny_lm_dir)]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_stage2_refuses_codes_of_the_wrong_shape(tmp_path, tiny_lm_dir, capsys):
    np.save(tmp_path / "c.npy", np.zeros((8, 5), dtype=np.int64))
    assert main(["stage2", str(tmp_path / "c.npy"), "--model", str(tiny_lm_dir / "s2"), "--out", "o.npy"]) == 2
    assert "expected (1, T)" in capsys.readouterr().err


def test_generate_tiny_writes_codes_audio_and_bundle(tiny_dir, tmp_path):
    """Text to audio offline, end to end: stage-1 (1, T) and stage-2 (8, T) arrays, mix/vocal/instrumental audio
    at 44.1 kHz with 882 samples per frame, the bundle and the settings."""
    import soundfile

    out = tmp_path / "song"
    result = run("generate", "--tiny", str(tiny_dir), "--genre", "pop female", "--lyrics", "[verse]\nla la\n[chorus]\nhey",
                 "--max-new-tokens", "30", "--min-new-tokens", "4", "--format", "flac", "--out", str(out))
    assert result.returncode == 0, result.stderr
    stage1, stage2 = np.load(out / "stage1_vocal.npy"), np.load(out / "stage2_instrumental.npy")
    frames = stage1.shape[1]
    assert stage1.shape == (1, frames) and stage2.shape == (8, frames)
    for name in ("mix", "vocal", "instrumental"):
        info = soundfile.info(str(out / f"{name}.flac"))
        assert info.samplerate == 44100 and info.frames == 882 * frames
    settings = json.loads((out / "settings.json").read_text())
    assert settings["seed"] == 42 and settings["genres"] == "pop female"
    assert (out / "song.npz").is_file()


def test_decode_and_encode_commands(tiny_dir, tmp_path):
    """(K, T) codes -> 16 kHz (320 T samples) or 44.1 kHz through an upsampler (882 T); audio -> (N, T) codes."""
    import soundfile

    codec = str(tiny_dir / "xcodec_mini_infer")
    np.save(tmp_path / "c.npy", np.random.default_rng(0).integers(0, 1024, (8, 25)))
    assert main(["decode", str(tmp_path / "c.npy"), "--codec", codec, "--out", str(tmp_path / "a.npy")]) == 0
    assert np.load(tmp_path / "a.npy").shape == (320 * 25,)
    assert main(["decode", str(tmp_path / "c.npy"), "--codec", codec, "--upsampler", "vocal",
                 "--out", str(tmp_path / "a.wav")]) == 0
    info = soundfile.info(str(tmp_path / "a.wav"))
    assert info.samplerate == 44100 and info.frames == 882 * 25
    assert main(["encode", str(tmp_path / "a.wav"), "--codec", codec, "--codebooks", "4",
                 "--out", str(tmp_path / "e.npy")]) == 0
    assert np.load(tmp_path / "e.npy").shape == (4, 25)
