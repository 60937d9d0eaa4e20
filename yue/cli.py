"""`python -m yue …`: flags in, files out. All work is done by the pipeline and the modules it uses."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from . import checks
from .cli_inputs import check_models, check_out, check_reference, codes_file, read_text
from .config import Limits, Sampling
from .devices import check_device, check_stage2

AUDIO_FORMATS = ("wav", "flac", "mp3")


def _sampling_flags(parser: argparse.ArgumentParser) -> None:
    d = Sampling()
    group = parser.add_argument_group("stage-1 sampling (official defaults)")
    group.add_argument("--max-new-tokens", type=int, default=d.max_new_tokens, help="per section (2 per frame, 100/s)")
    group.add_argument("--min-new-tokens", type=int, default=d.min_new_tokens)
    group.add_argument("--top-p", type=float, default=d.top_p)
    group.add_argument("--top-k", type=int, default=d.top_k, help="0 switches it off")
    group.add_argument("--temperature", type=float, default=d.temperature)
    group.add_argument("--repetition-penalty", type=float, default=d.repetition_penalty)
    group.add_argument("--guidance-first", type=float, default=d.guidance_first, help="CFG scale, first section")
    group.add_argument("--guidance-later", type=float, default=d.guidance_later, help="CFG scale, later sections")
    group.add_argument("--greedy", action="store_true", help="argmax instead of sampling (reproducible checks)")


def _sampling(args) -> Sampling:
    return Sampling(top_p=args.top_p, top_k=args.top_k, temperature=args.temperature,
                    repetition_penalty=args.repetition_penalty, guidance_first=args.guidance_first,
                    guidance_later=args.guidance_later, max_new_tokens=args.max_new_tokens,
                    min_new_tokens=args.min_new_tokens, do_sample=not args.greedy)


def _model_flags(parser: argparse.ArgumentParser, codec: bool = True) -> None:
    group = parser.add_argument_group("models (folders or Hub ids; default: the official checkpoints)")
    group.add_argument("--tiny", type=Path, metavar="DIR", help="use tiny random checkpoints from `yue tiny DIR`")
    group.add_argument("--stage1", help="stage-1 checkpoint (folder or Hub id)")
    group.add_argument("--stage2", help="stage-2 checkpoint (folder or Hub id)")
    if codec:
        group.add_argument("--codec", help="xcodec_mini_infer folder or Hub id")
    group.add_argument("--language", default="en", choices=["en", "zh", "jp-kr"])
    group.add_argument("--precision", default="auto", choices=["auto", "bf16", "int8", "nf4", "fp32"])
    group.add_argument("--device", help="cpu, cuda, cuda:1 … (default: cuda when present)")


def _load_pipeline(args, mode: str):
    from .pipeline import Pipeline

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
    from .song import Reference

    if not args.reference:
        return None
    codes = [codes_file(Path(p)).reshape(-1) if p.endswith(".npy") else encode(p) for p in args.reference]
    window = dict(start_s=args.reference_start, end_s=args.reference_end)
    if len(codes) == 1:
        return Reference(codes=codes[0], **window)
    return Reference(vocal_codes=codes[0], instrumental_codes=codes[1], **window)


def _reference_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reference", nargs="+", metavar="AUDIO_OR_NPY",
                        help="style reference: one mixed track, or a vocal and an instrumental track")
    parser.add_argument("--reference-start", type=float, default=0.0, help="seconds")
    parser.add_argument("--reference-end", type=float, default=30.0, help="seconds (about 30 s recommended)")


def cmd_tiny(args) -> None:
    from .tiny import write_tiny

    paths = write_tiny(args.dir, seed=args.seed, codec=not args.no_codec)
    for name, path in paths.items():
        print(f"{name}: {path}")


def cmd_generate(args) -> None:
    from .pipeline import check_request
    from .song import SongCodes, SongRequest

    # Everything that can be checked is checked before any model is loaded.
    genres = read_text(args.genre, args.genre_file, "genre").strip()
    lyrics = read_text(args.lyrics, args.lyrics_file, "lyrics")
    checks.number(args.takes, "--takes", 1, Limits().max_takes, whole=True)
    out = Path(args.out)
    folders = [out] if args.takes == 1 else [out / f"take{take + 1}" for take in range(args.takes)]
    for folder in folders:
        check_out(folder, args.format, args.overwrite)
    previous, made_with = SongCodes.load(args.continue_from) if args.continue_from else (None, {})
    if previous is not None and args.keep_sections is not None:
        previous = previous.keep_sections(args.keep_sections)
    check_reference(args)
    check_models(args)
    request = SongRequest(genres, lyrics, args.segments, _sampling(args), args.seed, None, previous, args.rescale,
                          args.takes)
    for warning in check_request(request)[1]:
        print(f"warning: {warning}", file=sys.stderr)
    # the checkpoint that made the song continues it exactly: ICL when it had a reference, else CoT
    mode = "icl" if args.reference or made_with.get("reference") else "cot"
    pipeline = _load_pipeline(args, mode)
    request = replace(request, reference=_reference(args, pipeline.encode))
    pipeline.check(request)  # the context limit needs the tokenizer (and the reference's codes)
    songs = None
    for songs in pipeline.stream_takes(request, on_progress=lambda p: print(p.describe(), file=sys.stderr, flush=True)):
        pass
    for take, (song, folder) in enumerate(zip(songs, folders)):
        # a take is the song of a one-take run with its own seed: its bundle continues it exactly
        settings = {**request.settings(), "seed": song.seed, "takes": 1}
        _write_song(folder, song, settings, args.format)
        name = f"take {take + 1}: " if len(songs) > 1 else ""
        print(f"{name}seed {song.seed}; {song.seconds:.1f} s of audio in {folder}; timings {song.timings}")


def _write_song(folder: Path, song, settings: dict, fmt: str) -> None:
    """The codes (stage1_*.npy, stage2_*.npy, song.npz), the audio and settings.json of one song in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    codes = song.codes
    for name, array in (("stage1_vocal", codes.stage1.vocal[None]), ("stage1_instrumental", codes.stage1.instrumental[None]),
                        ("stage2_vocal", codes.vocal), ("stage2_instrumental", codes.instrumental)):
        np.save(folder / f"{name}.npy", array)
    codes.save(folder / "song.npz", settings)
    if song.mix.size:
        from .audio import write_audio

        for name, samples in (("mix", song.mix), ("vocal", song.vocal), ("instrumental", song.instrumental)):
            write_audio(folder / f"{name}.{fmt}", samples, song.sample_rate)
    (folder / "settings.json").write_text(json.dumps({**settings, "timings": song.timings}, indent=2))


def _codec_folder(source):
    """--codec: an xcodec_mini_infer folder, or a Hub id fetched with only the files the codec needs."""
    from .hub import resolve
    from .registry import CODEC_FILES

    return resolve(source, CODEC_FILES)


def _encode_with(args, path: str) -> np.ndarray:
    """Codebook-0 codes of an audio file with the codec named by --codec (or the tiny one)."""
    from .audio import read_audio
    from .codec_loading import load_codec
    from .render import encode_codebook0

    source = args.codec or (args.tiny / "xcodec_mini_infer" if args.tiny else None)
    if source is None:
        raise ValueError("encoding reference audio needs the codec: pass --codec DIR (or --tiny DIR)")
    codec = load_codec(_codec_folder(source), getattr(args, "device", None) or "cpu")
    return encode_codebook0(codec, read_audio(path))


def cmd_prompt(args) -> None:
    from .loading import load_tokenizer
    from .pipeline import request_prompt
    from .song import SongRequest

    genres = read_text(args.genre, args.genre_file, "genre").strip()
    lyrics = read_text(args.lyrics, args.lyrics_file, "lyrics")
    check_reference(args)
    tokenizer_source = args.tokenizer or (args.tiny / "s1" if args.tiny else "m-a-p/YuE-s1-7B-anneal-en-cot")
    request = SongRequest(genres, lyrics, reference=_reference(args, lambda path: _encode_with(args, path)))
    built = request_prompt(load_tokenizer(tokenizer_source), request)
    payload = {"uses_reference": built.uses_reference, "labels": list(built.labels),
               "sections": [list(piece) for piece in built.pieces]}
    Path(args.out).write_text(json.dumps(payload))
    print(f"{len(built.pieces)} section prompts, first {len(built.pieces[0])} ids -> {args.out}")


def cmd_stage2(args) -> None:
    from . import stage2
    from .config import Stage2Config
    from .loading import load_lm

    codes = codes_file(args.codes, rows=1)
    if (Path(args.model) / "config.json").is_file():
        check_stage2(Path(args.model))
    model = load_lm(args.model, args.device or "cpu")
    filled = stage2.generate(model, [codes.reshape(-1)], Stage2Config(max_batch=args.batch))[0]
    np.save(args.out, filled)
    print(f"{filled.shape} codes -> {args.out}")


def cmd_decode(args) -> None:
    from .audio import write_audio
    from .render import decode_codes
    from .codec_loading import load_codec, load_vocoder

    codes = codes_file(args.codes)
    device = check_device(args.device or "cpu")
    folder = _codec_folder(args.codec)
    codec = load_codec(folder, device, decode_only=True)
    vocoder = load_vocoder(folder, args.upsampler, device) if args.upsampler else None
    samples, rate = decode_codes(codec, codes, vocoder)
    if str(args.out).endswith(".npy"):
        np.save(args.out, samples.astype(np.float32))
    else:
        write_audio(args.out, samples, rate)
    print(f"{samples.shape[-1] / rate:.2f} s at {rate} Hz -> {args.out}")


def cmd_encode(args) -> None:
    from .audio import read_audio
    from .codec_loading import load_codec
    from .render import encode_codes

    samples = read_audio(args.audio)
    codec = load_codec(_codec_folder(args.codec), check_device(args.device or "cpu"))
    codes = encode_codes(codec, samples, args.codebooks)
    np.save(args.out, codes)
    print(f"{codes.shape} codes -> {args.out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m yue", description="YuE v1 lyrics-to-song inference")
    commands = parser.add_subparsers(dest="command", required=True)

    tiny = commands.add_parser("tiny", help="write tiny random checkpoints (offline tests and demo; output is noise)")
    tiny.add_argument("dir", type=Path)
    tiny.add_argument("--seed", type=int, default=0)
    tiny.add_argument("--no-codec", action="store_true", help="only the two LMs and the tokenizer")
    tiny.set_defaults(run=cmd_tiny)

    gen = commands.add_parser("generate", help="lyrics (+ optional reference or song to continue) -> song")
    gen.add_argument("--genre", help="genre tags text, e.g. 'pop female bright vocal piano'")
    gen.add_argument("--genre-file", type=Path)
    gen.add_argument("--lyrics", help="lyrics text with [verse]/[chorus] section tags")
    gen.add_argument("--lyrics-file", type=Path)
    gen.add_argument("--segments", type=int, help="sections in the finished song (default: all)")
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument("--takes", type=int, default=1, metavar="N",
                     help="versions made at once in one batch (1-4, default 1); take t uses seed + t - 1 and is "
                          "written to OUT/take<t>/")
    gen.add_argument("--continue-from", type=Path, metavar="SONG.npz", help="bundle of a song to continue")
    gen.add_argument("--keep-sections", type=int, help="with --continue-from: keep this many sections")
    gen.add_argument("--rescale", action="store_true", help="scale to peak 0.99 instead of clipping")
    gen.add_argument("--format", default="wav", choices=AUDIO_FORMATS)
    gen.add_argument("--out", default="outputs", help="output folder")
    gen.add_argument("--overwrite", action="store_true", help="replace a song already in --out")
    _reference_flags(gen)
    _sampling_flags(gen)
    _model_flags(gen)
    gen.set_defaults(run=cmd_generate)

    prompt = commands.add_parser("prompt", help="save the stage-1 prompt ids of every section as JSON")
    prompt.add_argument("--genre")
    prompt.add_argument("--genre-file", type=Path)
    prompt.add_argument("--lyrics")
    prompt.add_argument("--lyrics-file", type=Path)
    prompt.add_argument("--tokenizer", help="stage-1 checkpoint holding tokenizer.model (folder or Hub id)")
    prompt.add_argument("--tiny", type=Path, metavar="DIR")
    prompt.add_argument("--codec", help="xcodec_mini_infer folder or Hub id, to encode reference audio")
    prompt.add_argument("--out", required=True)
    _reference_flags(prompt)
    prompt.set_defaults(run=cmd_prompt)

    s2 = commands.add_parser("stage2", help="(1, T) codebook-0 codes -> (8, T) codes")
    s2.add_argument("codes", type=Path)
    s2.add_argument("--model", required=True, help="stage-2 checkpoint (folder or Hub id)")
    s2.add_argument("--out", required=True)
    s2.add_argument("--batch", type=int, help="rows per batch (default: from free memory)")
    s2.add_argument("--device")
    s2.set_defaults(run=cmd_stage2)

    dec = commands.add_parser("decode", help="(K, T) codes -> audio (16 kHz, or 44.1 kHz with --upsampler)")
    dec.add_argument("codes", type=Path)
    dec.add_argument("--codec", required=True, help="xcodec_mini_infer folder or Hub id")
    dec.add_argument("--upsampler", choices=["vocal", "instrumental"])
    dec.add_argument("--out", required=True, help=".npy (float32 samples), .wav, .flac or .mp3")
    dec.add_argument("--device")
    dec.set_defaults(run=cmd_decode)

    enc = commands.add_parser("encode", help="audio file -> (N, T) codes")
    enc.add_argument("audio")
    enc.add_argument("--codec", required=True)
    enc.add_argument("--codebooks", type=int, default=1, help="1 for stage-1 references, up to 12")
    enc.add_argument("--out", required=True)
    enc.add_argument("--device")
    enc.set_defaults(run=cmd_encode)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
