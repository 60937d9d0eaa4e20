"""The command line's inputs, read and checked before any model is loaded: text files, code files, the output
folder, the reference flags, the sections to make and the device. Every problem is a ValueError naming the flag or
file and the fix. numpy and torch are imported by the checks that need them (the parser imports nothing heavy)."""
from __future__ import annotations

import os
from pathlib import Path

from .. import checks
from ..config import Limits
from ..files import not_a_file, utf8_name, writable_folder
from ..rates import CODEBOOKS as MAX_CODEBOOKS  # xcodec's RVQ depth: the most codebooks a codes file can hold
from ..rates import FRAME_RATE
# What `generate` writes into --out besides the three audio tracks; an --out holding any of them is a song.
SONG_FILES = ("stage1_vocal.npy", "stage1_instrumental.npy", "stage2_vocal.npy", "stage2_instrumental.npy",
              "song.npz", "settings.json")


def read_text(value: str | None, file: Path | None, what: str) -> str:
    if value is not None and file is not None:
        raise ValueError(f"give the {what} once: --{what} TEXT or --{what}-file FILE, not both (the text would be "
                         "ignored)")
    if file is not None:
        if not file.is_file():
            raise ValueError(f"--{what}-file {file}: {not_a_file(file)}")
        try:
            return file.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"{what} file {file} is not UTF-8 text (byte {error.object[error.start]:#04x} at "
                             f"position {error.start}): save it as UTF-8") from None
    if value is None:
        raise ValueError(f"give the {what} with --{what} TEXT or --{what}-file FILE")
    return value


def codes_file(path: Path, rows: int | None = None):
    """(T,) or (K, T) int64 codes from an .npy file, its header checked before its data is read."""
    import numpy as np

    from ..arrays import Spec, read_npy
    from ..bundle import MAX_SONG_FRAMES
    from ..song import check_codes

    codes = read_npy(path, Spec((1, 2), MAX_CODEBOOKS * MAX_SONG_FRAMES))
    if rows is not None and codes.ndim == 2 and codes.shape[0] != rows:
        raise ValueError(f"{path} has shape {codes.shape}; expected ({rows}, T)")
    check_codes(codes, str(path), codes.ndim)
    return codes.astype(np.int64)


def check_models(args) -> None:
    """Before any load: the device exists, the YUE_* settings are known ones, and --tiny names a folder of tiny
    checkpoints and is given no other checkpoint (it would be ignored)."""
    from ..weights.devices import check_device, check_environment

    check_device(args.device or ("cpu" if args.tiny is not None else None))
    check_environment()
    if args.tiny is None:
        return
    if not (args.tiny / "s1").is_dir():
        raise ValueError(f"{args.tiny} holds no tiny checkpoints; write them with `python -m yue tiny {args.tiny}`")
    ignored = [flag for flag in ("stage1", "stage2", "codec") if getattr(args, flag, None) is not None]
    if ignored:
        flags = " and ".join(f"--{flag}" for flag in ignored)
        raise ValueError(f"--tiny uses its own checkpoints ({args.tiny}/s1, s2 and xcodec_mini_infer), so {flags} "
                         f"would be ignored: leave {'it' if len(ignored) == 1 else 'them'} out, or leave out --tiny")


def check_out_file(out: Path, inputs, overwrite: bool, suffixes: tuple[str, ...] = ()) -> Path:
    """--out FILE of prompt, stage2, decode and encode, before any model is loaded: not one of the command's
    `inputs` (never replaced, even with --overwrite), not an existing file unless --overwrite, not a folder, one of
    `suffixes` when given, in a folder that can be written."""
    out = Path(out)
    utf8_name(out, "--out")
    for given in inputs:
        if given is not None and Path(given).exists() and out.exists() and os.path.samefile(given, out):
            raise ValueError(f"--out {out} is an input of this command ({given}); write the result to another file")
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name")
    if out.exists() and not overwrite:
        raise ValueError(f"--out {out} already exists; pass --overwrite to replace it, or choose another name")
    if suffixes and out.suffix.lower() not in suffixes:
        raise ValueError(f"--out {out}: the name must end in {' or '.join(suffixes)}")
    writable_folder(out.parent, f"--out {out}")
    return out


def check_out(out: Path, fmt: str, overwrite: bool) -> None:
    """Refuse, before any model is loaded, an --out that is a file, cannot be written, or already holds a song."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder for the song's files")
    ancestor = out
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: no permission to write in {ancestor}; choose another folder")
    writable_folder(out, f"--out {out}")
    names = SONG_FILES + tuple(f"{track}.{fmt}" for track in ("mix", "vocal", "instrumental"))
    existing = [name for name in names if (out / name).exists()]
    if existing and not overwrite:
        raise ValueError(f"--out {out} already holds a song ({', '.join(existing)}); pass --overwrite to replace it, "
                         "or choose another folder")


def reference_seconds(path: str) -> float:
    """The length of a --reference: an audio file, or codes (.npy, 50 frames a second), checked to be readable."""
    if not Path(path).is_file():
        raise ValueError(f"--reference {path}: {not_a_file(Path(path))}")
    if path.endswith(".npy"):
        frames = codes_file(Path(path)).shape[-1]
        if frames < 1:
            raise ValueError(f"--reference {path} holds no frames; encode a longer recording")
        return frames / FRAME_RATE
    from ..audio import check_audio

    try:
        info = check_audio(path)
    except ValueError as error:
        raise ValueError(f"--reference {path}: {error}") from None
    return info.frames / info.samplerate


def check_reference(args) -> None:
    """The reference flags, before any model is loaded: at most two tracks that exist, a finite window that starts
    within them."""
    if not args.reference:
        return
    if len(args.reference) > 2:
        raise ValueError("--reference takes one mixed track, or a vocal and an instrumental track")
    seconds = [reference_seconds(path) for path in args.reference]
    if len(seconds) == 2:
        checks.same_length((f"vocal reference {args.reference[0]}", seconds[0]),
                           (f"instrumental reference {args.reference[1]}", seconds[1]))
    longest = min(seconds)  # a window past the end ends with the file; one starting after it is empty
    start = checks.number(args.reference_start, "--reference-start (seconds)", 0, span=f" from 0 to below the "
                          f"reference's length, {longest:.2f}")
    if start >= longest:
        raise ValueError(f"--reference-start must be below the reference's length ({longest:.2f} s); got {start:g}")
    end = checks.number(args.reference_end, "--reference-end (seconds)", 0, Limits().max_reference_seconds)
    if not start < end:
        raise ValueError(f"--reference-end must be after --reference-start ({start:g} s); about 30 s is recommended")
    if hasattr(args, "max_new_tokens"):  # generate: the window must fit beside a section's new tokens
        from ..request import check_reference_window
        from ..config import Sampling

        check_reference_window(min(end, longest) - start, len(seconds), Sampling(max_new_tokens=args.max_new_tokens))
