"""`python -m yue …`: flags in, files out. All work is done by the pipeline and the modules it uses.

The flags are in `parser.py`, the files it writes in `outputs.py`. Everything heavy (numpy, torch, transformers,
the pipeline) is imported inside the commands, after the flags are parsed, so `--help` and a mistyped flag answer at
once.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from .. import checks
from ..files import not_a_file
from .inputs import check_models, check_out, check_out_file, check_reference, codes_file, read_text
from .outputs import never_over_inputs, save_npy, write_row, write_song, write_text
from .parser import build_parser
from .progress import ProgressLine, is_terminal, summary
from ..config import Limits, Sampling
from ..weights.console import import_torchao_quietly
from ..weights.threads import set_cpu_threads


def _sampling(args) -> Sampling:
    return Sampling(top_p=args.top_p, top_k=args.top_k, temperature=args.temperature,
                    repetition_penalty=args.repetition_penalty, guidance_first=args.guidance_first,
                    guidance_later=args.guidance_later, max_new_tokens=args.max_new_tokens,
                    min_new_tokens=args.min_new_tokens, do_sample=not args.greedy)


def _load_pipeline(args, mode: str):
    from ..pipeline import Pipeline

    if args.tiny is not None:
        return Pipeline.tiny(args.tiny, device=args.device or "cpu", precision=args.precision)
    kwargs = dict(stage1=args.stage1, stage2=args.stage2, mode=mode, language=args.language,
                  precision=args.precision, device=args.device)
    if hasattr(args, "codec"):
        kwargs["codec"] = args.codec
    return Pipeline.from_pretrained(**kwargs)


def _reference(args, encode):
    """--reference MIX or --reference VOCAL INSTRUMENTAL: codebook-0 .npy codes ((T,) or (1, T)) or audio files,
    turned into codes by `encode(path)`."""
    from ..song import Reference

    if not args.reference:
        return None
    codes = [codes_file(Path(p)).reshape(-1) if p.endswith(".npy") else encode(p) for p in args.reference]
    window = dict(start_s=args.reference_start, end_s=args.reference_end)
    if len(codes) == 1:
        return Reference(codes=codes[0], **window)
    return Reference(vocal_codes=codes[0], instrumental_codes=codes[1], **window)


def _quiet_library_bars(terminal: bool) -> None:
    """No transformers progress bars (loading and saving weights: each leaves a line behind, and the CLI's own lines
    say what is loading and how long it took); piped, no huggingface_hub download bars either (their carriage-return
    updates become clutter in a log). On a terminal a first run's downloads keep their bars."""
    from huggingface_hub.utils import are_progress_bars_disabled, enable_progress_bars
    from transformers.utils import logging as transformers_logging

    downloads_shown = terminal and not are_progress_bars_disabled()
    transformers_logging.disable_progress_bar()  # it switches huggingface_hub's bars off too
    if downloads_shown:
        enable_progress_bars()


def cmd_tiny(args) -> None:
    from ..weights.tiny import write_tiny

    _quiet_library_bars(is_terminal(sys.stderr))
    paths = write_tiny(args.dir, seed=args.seed, codec=not args.no_codec)
    for name, path in paths.items():
        print(f"{name}: {path}")


def cmd_generate(args) -> None:
    from ..request import check_request
    from ..song import SongCodes, SongRequest

    started = time.perf_counter()
    progress = ProgressLine(sys.stderr)
    # Everything that can be checked is checked before any model is loaded.
    genres = read_text(args.genre, args.genre_file, "genre").strip()
    lyrics = read_text(args.lyrics, args.lyrics_file, "lyrics")
    checks.number(args.takes, "--takes", 1, Limits().max_takes, whole=True)
    listen_rows = _listen_rows(args)
    out = Path(args.out)
    folders = [out] if args.takes == 1 else [out / f"take{take + 1}" for take in range(args.takes)]
    for folder in folders:
        check_out(folder, args.format, args.overwrite)
        never_over_inputs(folder, args.format, [args.lyrics_file, args.genre_file, args.continue_from,
                                                 *(args.reference or [])])
    if args.continue_from and not args.continue_from.is_file():
        raise ValueError(f"--continue-from {args.continue_from}: {not_a_file(args.continue_from)}; give the song.npz "
                         "of an earlier run")
    previous, made_with = SongCodes.load(args.continue_from) if args.continue_from else (None, {})
    if previous is not None and args.keep_sections is not None:
        previous = previous.keep_sections(args.keep_sections)
    check_reference(args)
    check_models(args)
    request = SongRequest(genres, lyrics, args.segments, _sampling(args), args.seed, None, previous, args.rescale,
                         args.takes)
    # an --segments the lyrics (or the kept song) cannot give is refused here
    lyric_sections, warnings = check_request(request)
    kept = 0 if previous is None else len(previous.stage1.section_frames)
    for warning in warnings:
        progress.note(f"warning: {warning}")
    total = request.sections_total(len(lyric_sections))
    progress.note(f"making {total} of {len(lyric_sections)} lyric sections"
                  + (f" ({kept} kept from {args.continue_from})" if kept else "")
                  + ("; --segments all for every section" if total < len(lyric_sections) else ""))
    # the checkpoint that made the song continues it exactly: ICL when it had a reference, else CoT
    mode = "icl" if args.reference or made_with.get("reference") else "cot"
    _quiet_library_bars(progress.terminal)
    progress.note(f"loading models: {f'tiny checkpoints in {args.tiny}' if args.tiny else 'official checkpoints'}")
    loading = time.perf_counter()
    pipeline = _load_pipeline(args, mode)
    load_s = time.perf_counter() - loading
    if pipeline.models.report is not None:
        progress.note(f"models on {pipeline.models.report.device}: {pipeline.models.report.summary()}")
    request = replace(request, reference=_reference(args, pipeline.encode))
    pipeline.check(request)  # the context limit needs the tokenizer (and the reference's codes)
    songs = None
    try:
        for songs in pipeline.stream_takes(request, on_progress=progress,
                                           on_row=(lambda piece: write_row(folders, piece)) if args.rows else None,
                                           listen_rows=listen_rows):
            pass
    finally:
        progress.end()  # an error or Ctrl-C starts on a line of its own
    for song, folder in zip(songs, folders):
        # a take is the song of a one-take run with its own seed: its bundle continues it exactly
        settings = {**request.settings(), "seed": song.seed, "takes": 1}
        write_song(folder, song, settings, args.format)
    audio = [f"{track}.{args.format}" for track in ("mix", "vocal", "instrumental")] if songs[0].mix.size else []
    for line in summary(songs, folders, audio, len(lyric_sections), load_s, time.perf_counter() - started):
        print(line)


def _listen_rows(args) -> int:
    """--listen-rows: a whole number >= 1, and only with --rows (without it nothing is heard while it is made)."""
    from ..rows import LISTEN_ROWS

    if args.listen_rows is None:
        return LISTEN_ROWS
    if not args.rows:
        raise ValueError("--listen-rows sets how the audio heard while the song is made (--rows) is batched: add "
                         "--rows, or leave --listen-rows out")
    return checks.number(args.listen_rows, "--listen-rows", 1, whole=True)


def _codec_folder(source):
    """--codec: an xcodec_mini_infer folder, or a Hub id fetched with only the files the codec needs."""
    from ..weights.hub import resolve
    from ..weights.registry import CODEC_FILES

    return resolve(source, CODEC_FILES)


def _encode_with(args, path: str):
    """Codebook-0 codes (T,) of an audio file with the codec named by --codec (or the tiny one)."""
    from ..audio import read_audio
    from ..weights.codec_loading import load_codec
    from ..codec.render import encode_codebook0

    source = args.codec or (args.tiny / "xcodec_mini_infer" if args.tiny else None)
    if source is None:
        raise ValueError("encoding reference audio needs the codec: pass --codec DIR (or --tiny DIR)")
    codec = load_codec(_codec_folder(source), getattr(args, "device", None) or "cpu")
    return encode_codebook0(codec, read_audio(path))


def cmd_prompt(args) -> None:
    from ..weights.loading import load_tokenizer
    from ..request import check_request, request_prompt
    from ..song import SongRequest

    out = check_out_file(args.out, [args.lyrics_file, args.genre_file, *(args.reference or [])], args.overwrite)
    genres = read_text(args.genre, args.genre_file, "genre").strip()
    lyrics = read_text(args.lyrics, args.lyrics_file, "lyrics")
    check_reference(args)
    _, warnings = check_request(SongRequest(genres, lyrics, "all"))  # the text, before any codec or tokenizer
    for warning in warnings:  # what generate says about the same lyrics
        print(f"warning: {warning}", file=sys.stderr)
    tokenizer_source = args.tokenizer or (args.tiny / "s1" if args.tiny else "m-a-p/YuE-s1-7B-anneal-en-cot")
    # every section's prompt is built whatever the count to generate: segments="all" refuses none
    request = SongRequest(genres, lyrics, "all", reference=_reference(args, lambda path: _encode_with(args, path)))
    built = request_prompt(load_tokenizer(tokenizer_source), request)
    payload = {"uses_reference": built.uses_reference, "labels": list(built.labels),
               "sections": [list(piece) for piece in built.pieces]}
    write_text(out, json.dumps(payload))
    print(f"{len(built.pieces)} section prompts, first {len(built.pieces[0])} ids -> {out}")


def cmd_stage2(args) -> None:
    from ..lm import stage2
    from ..weights.devices import check_environment, check_stage2
    from ..config import Stage2Config
    from ..weights.loading import load_lm

    out = check_out_file(args.out, [args.codes], args.overwrite)
    codes = codes_file(args.codes, rows=1)
    check_environment()
    if (Path(args.model) / "config.json").is_file():
        check_stage2(Path(args.model))
    model = load_lm(args.model, args.device or "cpu")
    filled = stage2.generate(model, [codes.reshape(-1)], Stage2Config(max_batch=args.batch))[0]
    save_npy(out, filled)
    print(f"{filled.shape} codes -> {out}")


def cmd_decode(args) -> None:
    import numpy as np

    from ..audio import write_audio
    from ..weights.devices import check_device
    from ..codec.render import decode_codes
    from ..weights.codec_loading import load_codec, load_vocoder

    from ..audio import WRITE_FORMATS

    out = check_out_file(args.out, [args.codes], args.overwrite, (".npy", *WRITE_FORMATS))
    codes = codes_file(args.codes)
    device = check_device(args.device or "cpu")
    folder = _codec_folder(args.codec)
    codec = load_codec(folder, device, decode_only=True)
    vocoder = load_vocoder(folder, args.upsampler, device) if args.upsampler else None
    samples, rate = decode_codes(codec, codes, vocoder)
    if out.suffix.lower() == ".npy":
        save_npy(out, samples.astype(np.float32))
    else:
        write_audio(out, samples, rate)
    print(f"{samples.shape[-1] / rate:.2f} s at {rate} Hz -> {out}")


def cmd_encode(args) -> None:
    from ..audio import read_audio
    from ..weights.devices import check_device
    from ..weights.codec_loading import load_codec
    from ..codec.render import encode_codes

    out = check_out_file(args.out, [args.audio], args.overwrite)
    samples = read_audio(args.audio)
    codec = load_codec(_codec_folder(args.codec), check_device(args.device or "cpu"))
    codes = encode_codes(codec, samples, args.codebooks)
    save_npy(out, codes)
    print(f"{codes.shape} codes -> {out}")


COMMANDS = {"generate": cmd_generate, "prompt": cmd_prompt, "stage2": cmd_stage2, "decode": cmd_decode,
            "encode": cmd_encode, "tiny": cmd_tiny}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import_torchao_quietly()  # before transformers imports it: its optional kernels' lines stay off the console
    try:
        set_cpu_threads(args.threads)  # here, once: not at import, and before any work
        COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as error:
        # a path from argv may hold bytes that are not UTF-8 (lone surrogates): shown as \udce9, never a crash
        print(f"error: {error}".encode("utf-8", "backslashreplace").decode("utf-8"), file=sys.stderr)
        return 2
    return 0
