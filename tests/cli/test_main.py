"""python -m yue: each command works from files and fails with a clear message and a non-zero exit code."""
import json
import subprocess
import sys
import time

import numpy as np
import pytest

from yue.lm import official
from yue.cli.main import main


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
    (["stage2", "missing.npy", "--model", "m", "--out", "o.npy"], "codes file missing.npy: file not found"),
    (["generate", "--tiny", "nowhere", "--genre", "pop", "--lyrics", "[verse]\nx"], "holds no tiny checkpoints"),
    (["prompt", "--genre", "pop", "--out", "x.json"], "give the lyrics"),
])
def test_bad_input_exits_non_zero_with_a_clear_message(tiny_lm_dir, tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    if args[0] == "prompt":
        args = args + ["--tiny", str(tiny_lm_dir)]
    assert main(args) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("flags, message", [
    (["--rows", "--listen-rows", "0"], "--listen-rows must be a whole number >= 1"),
    (["--listen-rows", "2"], "add --rows"),
    (["--rows", "--listen-rows", "x"], "invalid int value: 'x'"),
])
def test_a_bad_listen_rows_is_refused_before_loading(tmp_path, capsys, flags, message):
    """--listen-rows: 0 and text are refused, and so is the flag without --rows (it batches what --rows hears), with
    a message naming it, before any model is loaded (here none could be: --tiny names no folder)."""
    args = ["generate", "--tiny", str(tmp_path / "none"), "--genre", "pop", "--lyrics", "[verse]\nx", *flags,
            "--out", str(tmp_path / "out")]
    if "x" in flags:
        with pytest.raises(SystemExit):
            main(args)
    else:
        assert main(args) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_stage2_refuses_a_stage1_model(tmp_path, tiny_lm_dir, capsys):
    np.save(tmp_path / "c.npy", np.zeros((1, 5), dtype=np.int64))
    assert main(["stage2", str(tmp_path / "c.npy"), "--model", str(tiny_lm_dir / "s1"), "--out", "o.npy"]) == 2
    assert "is a stage-1 checkpoint (tiny-s1 architecture), given as stage 2" in capsys.readouterr().err


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


def test_generate_takes_writes_one_folder_per_take_each_a_one_take_song(tiny_dir, tmp_path):
    """--takes 2: take1/ and take2/ hold full songs with seeds 7 and 8; take 2 equals a one-take run with seed 8."""
    common = ("generate", "--tiny", str(tiny_dir), "--genre", "pop", "--lyrics", "[verse]\nla la\n[chorus]\nhey",
              "--max-new-tokens", "20", "--min-new-tokens", "4")
    assert run(*common, "--seed", "7", "--takes", "2", "--out", str(tmp_path / "t")).returncode == 0
    assert run(*common, "--seed", "8", "--out", str(tmp_path / "one")).returncode == 0
    for take, seed in ((1, 7), (2, 8)):
        settings = json.loads((tmp_path / "t" / f"take{take}" / "settings.json").read_text())
        assert settings["seed"] == seed and (tmp_path / "t" / f"take{take}" / "mix.wav").is_file()
    np.testing.assert_array_equal(np.load(tmp_path / "t" / "take2" / "stage2_vocal.npy"),
                                  np.load(tmp_path / "one" / "stage2_vocal.npy"))
    refused = run(*common, "--takes", "5", "--out", str(tmp_path / "x"))
    assert refused.returncode != 0 and "--takes" in refused.stderr and not (tmp_path / "x").exists()


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


# -- how many sections, and what the output says ------------------------------------------------------------------

THREE_SECTIONS = "[verse]\nla la\n\n[chorus]\nhey\n\n[outro]\nbye\n"
SHORT = ["--max-new-tokens", "20", "--min-new-tokens", "4"]


@pytest.mark.parametrize("lyrics, extra, made, lyric_sections", [
    (THREE_SECTIONS, [], 2, 3), (THREE_SECTIONS, ["--segments", "all"], 3, 3), ("[verse]\nla la\n", [], 1, 1)])
def test_generate_makes_the_official_two_sections_unless_told(tiny_dir, tmp_path, capsys, lyrics, extra, made,
                                                              lyric_sections):
    """Without --segments: config.DEFAULT_SECTIONS (2, the official run) sections, or every one when the lyrics have
    fewer; `--segments all`: every section. The summary says how many of the lyrics' sections were made and, when
    fewer, how to make them all; piped, the progress is plain lines: one as each section's stage ends (and one per 10 s
    a stage runs)."""
    from yue.song import SongCodes

    from yue.cli.progress import PIPED_INTERVAL_S

    out = tmp_path / "song"
    started = time.perf_counter()
    assert main(["generate", "--tiny", str(tiny_dir), "--genre", "pop", "--lyrics", lyrics, *SHORT, *extra,
                 "--out", str(out)]) == 0
    elapsed = time.perf_counter() - started
    printed = capsys.readouterr()
    assert len(SongCodes.load(out / "song.npz")[0].stage1.section_frames) == made
    assert f"{made} of {lyric_sections} lyric sections" in printed.out
    assert ("--segments all for every section" in printed.out) == (made < lyric_sections)
    steps = [line for line in printed.err.splitlines() if line.startswith("section ")]
    assert {line.split(":")[0] for line in steps} == {f"section {s}/{made} stage {k}" for s in range(1, made + 1)
                                                      for k in (1, 2)}
    # one line as each step ends, and one per PIPED_INTERVAL_S a step runs (on a busy machine)
    assert len(steps) <= 2 * made + elapsed / PIPED_INTERVAL_S and "\r" not in printed.err
    assert "time: loading models" in printed.out and "seed 42 -> " in printed.out


def test_continuing_without_segments_adds_the_official_two_sections(tiny_dir, tmp_path, capsys):
    """--continue-from a 1-section song with 4 lyric sections and no --segments: 1 kept + 2 new = 3 sections."""
    from yue.song import SongCodes

    lyrics = THREE_SECTIONS + "\n[bridge]\nsoon\n"
    common = ["generate", "--tiny", str(tiny_dir), "--genre", "pop", "--lyrics", lyrics, *SHORT]
    assert main(common + ["--segments", "1", "--out", str(tmp_path / "one")]) == 0
    assert main(common + ["--continue-from", str(tmp_path / "one" / "song.npz"), "--out", str(tmp_path / "more")]) == 0
    first, _ = SongCodes.load(tmp_path / "one" / "song.npz")
    more, _ = SongCodes.load(tmp_path / "more" / "song.npz")
    assert len(more.stage1.section_frames) == 3
    assert more.stage1.section_frames[0] == first.stage1.section_frames[0]
    assert "3 of 4 lyric sections; --segments all for every section" in capsys.readouterr().out


def test_int4_on_the_tiny_models_generates_and_an_unknown_precision_is_refused(tiny_dir, tmp_path, capsys):
    """--precision takes the shared list (int4 included: torchao on the CPU) and argparse refuses names not in it."""
    pytest.importorskip("torchao", reason="torchao is not installed")
    args = ["generate", "--genre", "pop", "--lyrics", "[verse]\nla la\n", "--tiny", str(tiny_dir), "--max-new-tokens",
            "20", "--min-new-tokens", "10", "--segments", "1", "--out"]
    assert main(args + [str(tmp_path / "int4"), "--precision", "int4"]) == 0
    assert any((tmp_path / "int4").iterdir())
    with pytest.raises(SystemExit):
        main(args + [str(tmp_path / "fp8"), "--precision", "fp8"])
    assert "invalid choice: 'fp8'" in capsys.readouterr().err


def test_generate_rows_writes_the_song_as_it_is_made(tiny_dir, tmp_path):
    """--rows: each piece of the mix is a .wav in rows/ as soon as it is final; joined in name order they have the
    song's length and sound as its mix (16-bit; the loudness of all but the last piece is provisional)."""
    import soundfile

    out = tmp_path / "song"
    assert main(["generate", "--tiny", str(tiny_dir), "--genre", "pop", "--lyrics", "[verse]\nla la", "--rows",
                 "--max-new-tokens", "660", "--min-new-tokens", "640", "--out", str(out)]) == 0
    rows = sorted((out / "rows").glob("*.wav"))
    assert len(rows) >= 3 and rows[0].name == "0000000.wav"
    joined = np.concatenate([soundfile.read(str(row), dtype="float32")[0] for row in rows])
    mix, _ = soundfile.read(str(out / "mix.wav"), dtype="float32")
    assert joined.size == mix.size and np.abs(joined - mix).max() < 0.05 * max(np.abs(mix).max(), 1e-3)
