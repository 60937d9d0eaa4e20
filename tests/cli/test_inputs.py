"""python -m yue refuses bad input before any model loads (yue/cli/inputs.py and the commands' checks): every flag
and file named with what to do, outputs never replaced silently nor written over an input, no half-written file."""
import json
import subprocess
import sys

import numpy as np
import pytest

from yue.cli.main import main


# -- everything is checked before any model is loaded ---------------------------------------------------------------

def truncated_bundle(folder):
    from yue.song import SongCodes
    from yue.lm.stage1 import Stage1Tokens

    path = SongCodes(Stage1Tokens(np.arange(6), np.arange(6), (6,), ("verse",))).save(folder / "song.npz")
    data = path.read_bytes()
    (folder / "cut.npz").write_bytes(data[:len(data) // 2])
    return folder / "cut.npz"


def huge_bundle(folder):
    """A bundle whose stage-1 vocal member claims a (10**13,) int64 array (72.8 TiB) in a few bytes."""
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<i8", "fortran_order": False, "shape": (10**13,)})
    with zipfile.ZipFile(folder / "song.npz") as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    members["stage1_vocal.npy"] = header.getvalue() + bytes(16)
    with zipfile.ZipFile(folder / "huge.npz", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return folder / "huge.npz"


GOOD = ["generate", "--genre", "pop", "--lyrics", "[verse]\nla la\n"]


@pytest.mark.parametrize("args, message", [
    (["generate", "--genre", "pop", "--lyrics", " "], "Lyrics are empty"),
    (["generate", "--genre", " ", "--lyrics", "[verse]\nla\n"], "Genre tags are empty"),
    (["generate", "--genre", "pop", "--lyrics", "[verse]\nla <EOA> la\n"], "Lyrics hold '<EOA>' on line 2: that is"),
    (["generate", "--genre", "pop <SOA>", "--lyrics", "[verse]\nla\n"], "Genre tags hold '<SOA>' on line 1"),
    (GOOD + ["--seed", str(2**64)], "seed must be a whole number from 0 to 9007199254740991 (2**53 - 1)"),
    (GOOD + ["--temperature", "inf"], "temperature (--temperature) must be a finite number, got inf"),
    (GOOD + ["--segments", "3"], "segments is 3 but the lyrics have only 1 sections"),
    (GOOD + ["--out", "{tmp}/file.txt"], "is a file; give a folder"),
    (GOOD + ["--out", "{tmp}/old"], "already holds a song (song.npz, settings.json); pass --overwrite"),
    (["generate", "--genre", "pop", "--lyrics-file", "{tmp}/latin1.txt"],
     "lyrics file {tmp}/latin1.txt is not UTF-8 text (byte 0xe9 at position 11)"),
    (GOOD + ["--continue-from", "{tmp}/cut.npz"], "cut.npz is not a song bundle saved by this app: it is damaged"),
    (GOOD + ["--continue-from", "{tmp}/huge.npz"], "claims shape (10000000000000,)"),
    (GOOD + ["--reference", "{tmp}/ref.npy", "--reference-end", "inf"], "--reference-end (seconds) must be a number"),
    (GOOD + ["--reference", "{tmp}/ref.npy", "--reference-start", "nan"], "--reference-start (seconds) must be a"),
    (GOOD + ["--reference", "{tmp}/missing.wav"], "--reference {tmp}/missing.wav: file not found"),
    (GOOD + ["--reference", "{tmp}/file.txt"], "--reference {tmp}/file.txt: file.txt is not a readable audio file"),
    (GOOD + ["--reference", "{tmp}/ref.npy", "--reference-end", "1e308"],
     "--reference-end (seconds) must be a number from 0 to 600; got 1e+308"),
    (GOOD + ["--reference", "{tmp}/ref.npy", "--reference-start", "5"],
     "--reference-start must be below the reference's length (2.00 s); got 5"),
    (GOOD + ["--reference", "{tmp}/blip.wav"], "blip.wav is 1.0 ms long; the codec needs at least 20 ms (320 samples"),
    (GOOD + ["--reference", "{tmp}"], "--reference {tmp}: is a folder"),
    (GOOD + ["--reference", "/dev/zero"], "--reference /dev/zero: is not a regular file (a device, pipe or socket)"),
    (["generate", "--genre", "pop", "--lyrics-file", "{tmp}"], "--lyrics-file {tmp}: is a folder"),
    (["generate", "--genre", "pop", "--lyrics", "[verse]\nla \udcff la\n"],
     "Lyrics hold a character that is not text (U+DCFF, a lone surrogate) on line 2"),
    (["generate", "--genre", "pop \udcff", "--lyrics", "[verse]\nla\n"], "Genre tags hold a character that is not"),
    (GOOD + ["--device", "gpu"], "device 'gpu' is not a device name: use cpu, cuda or cuda:N"),
    (["generate", "--genre", "pop", "--lyrics", "[verse]\nla\n[chorus]\nhey\n", "--continue-from", "{tmp}/song.npz",
      "--segments", "1"], "segments is 1 but the song to continue already has 1 sections"),
    (GOOD + ["--reference", "{tmp}/ref.npy", "{tmp}/short.npy"],
     "The vocal reference {tmp}/ref.npy is 2.00 s long and the instrumental reference {tmp}/short.npy 1.00 s"),
    # the fourth campaign: weak answers 11 (the flag named), 12 (refused before encoding) and 3 (ignored flags)
    (GOOD + ["--continue-from", "{tmp}"], "--continue-from {tmp}: is a folder; give the song.npz of an earlier run"),
    (GOOD + ["--reference", "{tmp}/long.npy", "--reference-end", "599"],
     "The reference window is too long: its 599.0 s take 29950 tokens, more than the 13383 that fit"),
    (GOOD + ["--tiny", "{tmp}/tiny", "--stage1", "m-a-p/YuE-s1-7B-anneal-en-cot", "--codec", "x"],
     "--tiny uses its own checkpoints ({tmp}/tiny/s1, s2 and xcodec_mini_infer), so --stage1 and --codec would be "
     "ignored: leave them out, or leave out --tiny"),
])
def test_generate_refuses_bad_input_before_loading_models(tmp_path, monkeypatch, capsys, args, message):
    """Each bad input exits 2 with one line naming the flag or file; no model is loaded, nothing is written."""
    import yue.cli.main

    monkeypatch.setattr(yue.cli.main, "_load_pipeline", lambda *a: pytest.fail("a model was loaded"))
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "latin1.txt").write_bytes("[verse]\nCaf\xe9 song\n".encode("latin-1"))
    (tmp_path / "old").mkdir()
    for name in ("song.npz", "settings.json"):
        (tmp_path / "old" / name).write_text("an earlier song")
    np.save(tmp_path / "ref.npy", np.arange(100))
    np.save(tmp_path / "short.npy", np.arange(50))
    np.save(tmp_path / "long.npy", np.arange(599 * 50) % 1024)  # 599 s of codes
    (tmp_path / "tiny" / "s1").mkdir(parents=True)
    import soundfile

    soundfile.write(tmp_path / "blip.wav", np.full(16, 0.5, np.float32), 16000)  # the 16-sample reference
    truncated_bundle(tmp_path), huge_bundle(tmp_path)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "new")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message.replace("{tmp}", str(tmp_path)) in err and "Traceback" not in err and "allow_pickle" not in err
    assert not (tmp_path / "new").exists() and (tmp_path / "old" / "song.npz").read_text() == "an earlier song"


def test_invalid_utf8_in_argv_is_refused_before_loading(tmp_path):
    """Lyrics typed in a shell of another encoding (byte 0xff) are refused with the field and line, exit 2, no
    traceback; the check runs before any model is loaded (no --tiny: loading would need the Hub)."""
    args = [sys.executable, "-m", "yue", "generate", "--genre", "pop", "--lyrics", "[verse]\nla \xff la\n",
            "--device", "cpu", "--out", str(tmp_path / "o")]
    done = subprocess.run([a.encode("latin-1") if "\xff" in a else a for a in args], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "Lyrics hold a character that is not text (U+DCFF, a lone surrogate) on line 2" in done.stderr
    assert "loading models" not in done.stderr and not (tmp_path / "o").exists()


def test_prompt_checks_the_text_before_loading_the_tokenizer(tmp_path, monkeypatch, capsys):
    """`prompt` refused a lone surrogate only in the tokenizer (a cast error): now before anything is loaded."""
    no_loading(monkeypatch)
    assert main(["prompt", "--genre", "pop", "--lyrics", "[verse]\nla \udcff\n", "--out", str(tmp_path / "p.json")]) == 2
    assert "Lyrics hold a character that is not text" in capsys.readouterr().err


def test_cuda_on_a_machine_without_it_names_the_flag(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(GOOD + ["--device", "cuda", "--out", str(tmp_path / "o")]) == 2
    assert "sees no CUDA GPU: use device cpu (--device cpu)" in capsys.readouterr().err


def test_nf4_on_the_cpu_is_refused_before_loading(tiny_dir, tmp_path, capsys):
    """The tiny stage 2 (32 wide) cannot run nf4 on the CPU: refused with what to use, not after stage 1."""
    assert main(GOOD + ["--tiny", str(tiny_dir), "--precision", "nf4", "--out", str(tmp_path / "o")]) == 2
    assert "cannot run as nf4 on the cpu" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_overwrite_replaces_an_existing_song(tiny_dir, tmp_path):
    """--out holding a song: refused without --overwrite (untouched), replaced with it."""
    out = tmp_path / "song"
    args = GOOD + ["--tiny", str(tiny_dir), "--max-new-tokens", "20", "--min-new-tokens", "4", "--out", str(out)]
    assert main(args + ["--seed", "1"]) == 0
    first = (out / "settings.json").read_text()
    assert main(args + ["--seed", "2"]) == 2 and (out / "settings.json").read_text() == first
    assert main(args + ["--seed", "2", "--overwrite"]) == 0
    assert json.loads((out / "settings.json").read_text())["seed"] == 2


def test_generate_prints_dropped_lines_before_loading(tmp_path, monkeypatch, capsys):
    import yue.cli.main

    def stop(*args):
        raise ValueError("stopped before loading")

    monkeypatch.setattr(yue.cli.main, "_load_pipeline", stop)
    assert main(["generate", "--genre", "pop", "--lyrics", "[verse]\nla\n[pre-chorus]\nup\n",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "warning: Line 3: '[pre-chorus]' is not a section tag" in err and "Write [prechorus]" in err
    assert err.index("warning:") < err.index("stopped before loading")


def test_prompt_warns_about_dropped_lines_as_generate_does(tiny_dir, tmp_path, capsys):
    """Weak answer 2: `prompt` dropped text before the first tag and malformed tags silently."""
    lyrics = "intro words\n[verse]\nla\n[ chorus ]\nhey\n[verse\nho\n"
    assert main(["prompt", "--genre", "pop", "--lyrics", lyrics, "--tiny", str(tiny_dir),
                 "--out", str(tmp_path / "p.json")]) == 0
    err = capsys.readouterr().err
    assert "warning: Text before the first section tag is ignored: 'intro words'" in err
    assert "warning: Line 4: '[ chorus ]' is not a section tag" in err
    assert "warning: Line 6: '[verse' has no closing ']'" in err


@pytest.mark.parametrize("variable, value", [("YUE_COMPILE", "yes"), ("YUE_FUSED", "2")])
def test_yue_settings_are_checked_before_loading(tmp_path, monkeypatch, capsys, variable, value):
    """Weak answer 1: YUE_COMPILE was read only once the models had loaded."""
    import yue.cli.main

    monkeypatch.setattr(yue.cli.main, "_load_pipeline", lambda *a: pytest.fail("a model was loaded"))
    monkeypatch.setenv(variable, value)
    assert main(GOOD + ["--out", str(tmp_path / "o")]) == 2
    assert f"{variable}={value!r} is not a setting here" in capsys.readouterr().err


# -- outputs: never replaced silently, never over an input, checked before loading -------------------------------

def no_loading(monkeypatch):
    """Make any model or codec load fail the test: the commands' output checks must come first."""
    import yue.weights.codec_loading
    import yue.weights.loading

    for module, name in ((yue.weights.loading, "load_lm"), (yue.weights.loading, "load_tokenizer"),
                         (yue.weights.codec_loading, "load_codec")):
        monkeypatch.setattr(module, name, lambda *a, **k: pytest.fail("a model was loaded"))


@pytest.mark.parametrize("command", [
    ["stage2", "{tmp}/c.npy", "--model", "{tmp}/m"], ["decode", "{tmp}/c.npy", "--codec", "{tmp}/m"],
    ["encode", "{tmp}/a.wav", "--codec", "{tmp}/m"],
    ["prompt", "--genre", "pop", "--lyrics", "[verse]\nla\n", "--tokenizer", "{tmp}/m"],
])
def test_file_commands_refuse_an_existing_out_without_overwrite(tmp_path, monkeypatch, capsys, command):
    """decode, prompt, stage2 and encode replaced --out silently; now, as generate, they refuse an existing one
    (kept as it was) before loading anything and name --overwrite."""
    no_loading(monkeypatch)
    np.save(tmp_path / "c.npy", np.zeros((1, 5), dtype=np.int64))
    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "old.wav").write_text("keep me")
    args = [a.replace("{tmp}", str(tmp_path)) for a in command] + ["--out", str(tmp_path / "old.wav")]
    assert main(args) == 2
    assert f"--out {tmp_path / 'old.wav'} already exists; pass --overwrite to replace it" in capsys.readouterr().err
    assert (tmp_path / "old.wav").read_text() == "keep me"


@pytest.mark.parametrize("command, given", [
    (["prompt", "--genre", "pop", "--lyrics-file", "{tmp}/lyrics.txt", "--tokenizer", "{tmp}/m"], "lyrics.txt"),
    (["stage2", "{tmp}/c.npy", "--model", "{tmp}/m"], "c.npy"),
    (["decode", "{tmp}/c.npy", "--codec", "{tmp}/m"], "c.npy"),
])
def test_no_command_writes_over_its_own_input_even_with_overwrite(tmp_path, monkeypatch, capsys, command, given):
    """`prompt --lyrics-file L --out L` replaced the user's lyrics with JSON: refused, with or without --overwrite."""
    no_loading(monkeypatch)
    np.save(tmp_path / "c.npy", np.zeros((1, 5), dtype=np.int64))
    (tmp_path / "lyrics.txt").write_text("[verse]\nmy only copy\n")
    before = (tmp_path / given).read_bytes()
    args = [a.replace("{tmp}", str(tmp_path)) for a in command] + ["--out", str(tmp_path / given), "--overwrite"]
    assert main(args) == 2
    assert "is an input of this command" in capsys.readouterr().err and (tmp_path / given).read_bytes() == before


def test_generate_never_writes_over_the_song_it_continues(tiny_dir, tmp_path, capsys):
    """--continue-from out/song.npz --out out --overwrite would replace the song being continued: refused."""
    out = tmp_path / "song"
    args = GOOD + ["--tiny", str(tiny_dir), "--max-new-tokens", "20", "--min-new-tokens", "4", "--out", str(out)]
    assert main(args) == 0
    before = (out / "song.npz").read_bytes()
    assert main(args + ["--continue-from", str(out / "song.npz"), "--overwrite"]) == 2
    assert "an input of this run" in capsys.readouterr().err and (out / "song.npz").read_bytes() == before


def test_overwrite_replaces_the_file_of_a_file_command(tiny_lm_dir, tmp_path):
    """With --overwrite, prompt replaces an existing --out (and writes exactly the name given)."""
    out = tmp_path / "ids"
    out.write_text("old")
    assert main(["prompt", "--tiny", str(tiny_lm_dir), "--genre", "pop", "--lyrics", "[verse]\nhi\n", "--out", str(out),
                 "--overwrite"]) == 0
    assert json.loads(out.read_text())["labels"] == ["verse"] and sorted(p.name for p in tmp_path.iterdir()) == ["ids"]


@pytest.mark.parametrize("args, message", [
    (["--lyrics", "[verse]\nla\n", "--lyrics-file", "{tmp}/l.txt", "--genre", "pop"],
     "give the lyrics once: --lyrics TEXT or --lyrics-file FILE, not both"),
    (["--lyrics", "[verse]\nla\n", "--genre", "pop", "--genre-file", "{tmp}/l.txt"],
     "give the genre once: --genre TEXT or --genre-file FILE, not both"),
])
def test_text_and_its_file_together_are_refused(tmp_path, monkeypatch, capsys, args, message):
    """--lyrics with --lyrics-file silently sang the file: the pair is refused (the genre pair too)."""
    no_loading(monkeypatch)
    (tmp_path / "l.txt").write_text("[verse]\nfile\n")
    for command in (["generate"], ["prompt"]):
        out = str(tmp_path / ("o" if command == ["generate"] else "o.json"))
        assert main(command + [a.replace("{tmp}", str(tmp_path)) for a in args] + ["--out", out]) == 2
        assert message in capsys.readouterr().err


@pytest.mark.parametrize("command, out, message", [
    (GOOD, "/proc/yue-song", "cannot write in /proc"),
    (["decode", "{tmp}/c.npy", "--codec", "{tmp}/m"], "/proc/x.wav", "cannot write in /proc"),
    (["decode", "{tmp}/c.npy", "--codec", "{tmp}/m"], "{tmp}/x.ogg", "the name must end in .npy or .wav"),
    (GOOD, "{tmp}/caf\udce9", "the name holds bytes that are not UTF-8 text"),
    (["encode", "{tmp}/a.wav", "--codec", "{tmp}/m"], "{tmp}/caf\udce9.npy", "the name holds bytes that are not UTF-8"),
])
def test_an_out_that_cannot_be_written_is_refused_before_loading(tmp_path, monkeypatch, capsys, command, out, message):
    """/proc, a format decode cannot write, a name that is not UTF-8: found before any model loads, not after the
    run with half the files written."""
    import yue.cli.main

    no_loading(monkeypatch)
    monkeypatch.setattr(yue.cli.main, "_load_pipeline", lambda *a: pytest.fail("a model was loaded"))
    np.save(tmp_path / "c.npy", np.zeros((8, 5), dtype=np.int64))
    args = [a.replace("{tmp}", str(tmp_path)) for a in command] + ["--out", out.replace("{tmp}", str(tmp_path))]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_a_write_error_leaves_no_half_written_song(tiny_dir, tmp_path, monkeypatch, capsys):
    """A disk that fills up while the song is written: the error is one line and none of the run's files is left
    (there were 8 of 11, one of 0 bytes)."""
    import soundfile

    def full(path, *args, **kwargs):
        open(path, "wb").close()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(soundfile, "write", full)
    out = tmp_path / "song"
    assert main(GOOD + ["--tiny", str(tiny_dir), "--max-new-tokens", "20", "--min-new-tokens", "4",
                        "--out", str(out)]) == 2
    assert "No space left on device" in capsys.readouterr().err and list(out.iterdir()) == []
