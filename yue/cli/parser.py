"""The flags of `python -m yue`, each with what it is, its unit and its default.

Only torch-free modules are imported here (config, registry, rates), so `--help` answers at once; the defaults
shown are read from `config.py`, where the official values are named.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..checks import SEED_RANGE
from ..config import ALL_SECTIONS, DEFAULT_SECTIONS, Limits, Sampling
from ..rates import CODEBOOKS, CODEC_RATE, FRAME_RATE, OUTPUT_RATE
from ..weights.registry import CODEC_REPO, LANGUAGES, PRECISIONS, STAGE2_REPO

AUDIO_FORMATS = ("wav", "flac", "mp3")
LYRICS_FORMAT = "sections, each a tag line such as [verse], [chorus] or [bridge] followed by its lines"


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs (the examples) as written; option help wrapped to a readable width."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30, width=110)


def sections(value: str) -> int | str:
    """--segments: a whole number >= 1, or `all` (every lyric section; SongRequest.segments takes both)."""
    if value.strip().lower() == ALL_SECTIONS:
        return ALL_SECTIONS
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"give a whole number of sections or '{ALL_SECTIONS}', not {value!r}")
    if count < 1:
        raise argparse.ArgumentTypeError(f"give at least 1 section (or '{ALL_SECTIONS}'), not {count}")
    return count


def _command(commands, name: str, summary: str, example: str) -> argparse.ArgumentParser:
    command = commands.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".",
                                  epilog="example:\n  " + example, formatter_class=Formatter)
    command.add_argument("--threads", type=int, metavar="N",
                         help="PyTorch CPU threads (default: $OMP_NUM_THREADS when set, else half the usable CPUs: "
                              "spinning threads on a busy machine are many times slower)")
    return command


def _text_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--genre", metavar="TAGS",
                        help="genre tags, space-separated, e.g. 'pop female bright vocal piano' (this or --genre-file)")
    parser.add_argument("--genre-file", type=Path, metavar="FILE", help="UTF-8 text file holding the genre tags")
    parser.add_argument("--lyrics", metavar="TEXT", help=f"the lyrics: {LYRICS_FORMAT} (this or --lyrics-file)")
    parser.add_argument("--lyrics-file", type=Path, metavar="FILE", help="UTF-8 text file holding the lyrics")


def _reference_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("style reference (in-context learning; loads the icl stage-1 checkpoint)")
    group.add_argument("--reference", nargs="+", metavar="AUDIO_OR_NPY",
                       help="one mixed track, or a vocal and an instrumental track of the same length: audio files "
                            f"(wav, flac, mp3, ogg) or codebook-0 codes .npy of shape (T,) or (1, T), {FRAME_RATE} "
                            "frames a second, as `encode` writes them (default: no reference)")
    group.add_argument("--reference-start", type=float, default=0.0, metavar="SECONDS",
                       help="where the part of the reference the model hears starts, in seconds (default %(default)s)")
    group.add_argument("--reference-end", type=float, default=30.0, metavar="SECONDS",
                       help="where it ends, in seconds (default %(default)s; about 30 s is recommended)")


def _sampling_flags(parser: argparse.ArgumentParser) -> None:
    official = Sampling()
    group = parser.add_argument_group("stage-1 sampling (defaults: the official infer.py run)")
    tokens_per_second = 2 * FRAME_RATE  # a vocal and an instrumental token per codec frame
    group.add_argument("--max-new-tokens", type=int, default=official.max_new_tokens, metavar="TOKENS",
                       help=f"most stage-1 tokens per section ({tokens_per_second} tokens = 1 s of audio; default "
                            f"%(default)s = {official.max_new_tokens / tokens_per_second:g} s)")
    group.add_argument("--min-new-tokens", type=int, default=official.min_new_tokens, metavar="TOKENS",
                       help="tokens per section before the section may end (<EOA> is banned until then; default "
                            f"%(default)s = {official.min_new_tokens / tokens_per_second:g} s)")
    group.add_argument("--top-p", type=float, default=official.top_p, metavar="P",
                       help="nucleus sampling: draw from the most likely tokens holding this much probability, "
                            "0 to 1 (default %(default)s)")
    group.add_argument("--top-k", type=int, default=official.top_k, metavar="K",
                       help="draw from the K most likely tokens, before top-p; 0 switches it off (default %(default)s, "
                            "transformers 4.x's default that the official run used)")
    group.add_argument("--temperature", type=float, default=official.temperature, metavar="T",
                       help="> 1 flattens the token distribution, < 1 sharpens it (default %(default)s)")
    group.add_argument("--repetition-penalty", type=float, default=official.repetition_penalty, metavar="R",
                       help="> 1 makes tokens already in the section less likely (default %(default)s)")
    group.add_argument("--guidance-first", type=float, default=official.guidance_first, metavar="SCALE",
                       help="classifier-free guidance scale of the first section; 1.0 switches guidance off "
                            "(default %(default)s)")
    group.add_argument("--guidance-later", type=float, default=official.guidance_later, metavar="SCALE",
                       help="classifier-free guidance scale of every later section (default %(default)s)")
    group.add_argument("--greedy", action="store_true",
                       help="take the most likely token instead of sampling, for reproducible checks (default: sample)")


def _device_flag(parser) -> None:
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when present, else cpu)")


def _model_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("models (folders or Hub ids)")
    group.add_argument("--tiny", type=Path, metavar="DIR",
                       help="tiny random checkpoints written by `python -m yue tiny DIR`, on the cpu: offline tests "
                            "and demos, the audio is noise (default: the official checkpoints)")
    group.add_argument("--stage1", metavar="DIR_OR_ID",
                       help="stage-1 checkpoint (default: m-a-p/YuE-s1-7B-anneal-LANGUAGE-cot, or -icl with "
                            "--reference; a community int8/nf4 export when --precision asks for int8, bnb-int8 or nf4)")
    group.add_argument("--stage2", metavar="DIR_OR_ID", help=f"stage-2 checkpoint (default: {STAGE2_REPO})")
    group.add_argument("--codec", metavar="DIR_OR_ID",
                       help=f"xcodec_mini_infer folder or Hub id: codec and upsamplers (default: {CODEC_REPO})")
    group.add_argument("--language", default="en", choices=LANGUAGES,
                       help="language set of the official stage-1 checkpoint (default %(default)s)")
    group.add_argument("--precision", default="auto", choices=("auto",) + PRECISIONS,
                       help="weights of the two LMs: auto picks from the GPU's free memory (fp32 on the cpu); bf16 is "
                            "the official one; int8 and int4 (torchao, weight-only) take less memory and run in the "
                            "CUDA graphs, their GPU speed not measured yet (eager int8 is slower than bf16); nf4 and "
                            "bnb-int8 (bitsandbytes) take less memory and are slower than bf16 (measured); "
                            "docs/models.md compares them (default %(default)s)")
    _device_flag(group)


def _generate(commands) -> None:
    gen = _command(commands, "generate", "lyrics and genre tags (+ an optional style reference or a song to "
                   "continue) -> a song: codes, audio and a bundle to continue it",
                   "python -m yue generate --genre 'pop female bright vocal' --lyrics-file lyrics.txt --out song/\n"
                   "  python -m yue generate --tiny tiny --genre pop --lyrics-file lyrics.txt --max-new-tokens 200 "
                   "--out song/   # offline")
    _text_flags(gen)
    gen.add_argument("--segments", type=sections, metavar=f"N|{ALL_SECTIONS}",
                     help=f"sections to generate (default {DEFAULT_SECTIONS}, the official run, or fewer when the "
                          f"lyrics have fewer; `{ALL_SECTIONS}` for every lyric section). With --continue-from, N "
                          f"counts the kept sections too (default: the kept ones + {DEFAULT_SECTIONS})")
    gen.add_argument("--seed", type=int, default=42,
                     help=f"random seed, {SEED_RANGE}; settings.json records it (default %(default)s)")
    gen.add_argument("--takes", type=int, default=1, metavar="N",
                     help=f"versions made at once in one batch, 1 to {Limits().max_takes}; take t uses seed + t - 1 "
                          "and is written to OUT/take<t>/ (default %(default)s)")
    gen.add_argument("--continue-from", type=Path, metavar="SONG.npz",
                     help="song.npz of an earlier run: keep its sections and go on with the next lyric sections "
                          "(the lyrics list the kept sections first; default: a new song)")
    gen.add_argument("--keep-sections", type=int, metavar="N",
                     help="with --continue-from: keep its first N sections and make the ones after again (default: "
                          "keep them all)")
    gen.add_argument("--rescale", action="store_true",
                     help="scale the audio to peak 0.99 instead of clipping it (official --rescale; default: clip)")
    gen.add_argument("--format", default="wav", choices=AUDIO_FORMATS,
                     help=f"format of the {OUTPUT_RATE / 1000:g} kHz mix, vocal and instrumental files "
                          "(default %(default)s)")
    gen.add_argument("--out", default="outputs", metavar="DIR",
                     help="folder for stage1_*.npy (1, T) codebook-0 codes, stage2_*.npy (8, T) codes, song.npz, "
                          "settings.json and the audio (default %(default)s)")
    gen.add_argument("--overwrite", action="store_true",
                     help="replace a song already in --out (default: refuse, the song is kept)")
    gen.add_argument("--rows", action="store_true",
                     help="listen while it is made: write each take's audio as soon as it is final, about 2 s at a "
                          "time while stage 1 goes on, as rows/<first frame>.wav in its folder (mix; joined in name "
                          "order they are the song, loudness provisional until the end)")
    gen.add_argument("--listen-rows", type=int, metavar="N",
                     help="with --rows: rows (6 s each) per stage-2 batch while stage 1 goes on, after each section's "
                          "first row (made alone, to be heard soonest); 1 = each row as soon as it is made; larger = "
                          "less GPU time, longer waits between pieces (default: yue.rows.LISTEN_ROWS, each row as "
                          "soon as made)")
    _reference_flags(gen)
    _sampling_flags(gen)
    _model_flags(gen)


def _out_file(parser, metavar: str, help: str) -> None:
    """--out FILE and --overwrite: an existing file is kept unless --overwrite says to replace it."""
    parser.add_argument("--out", required=True, type=Path, metavar=metavar, help=help)
    parser.add_argument("--overwrite", action="store_true",
                        help="replace --out if it exists (default: refuse, the file is kept); an input of the same "
                             "command is never replaced")


def _prompt(commands) -> None:
    prompt = _command(commands, "prompt", "save the stage-1 prompt ids of every section as JSON (no model is loaded "
                      "unless a reference audio file must be encoded)",
                      "python -m yue prompt --tiny tiny --genre pop --lyrics-file lyrics.txt --out ids.json")
    _text_flags(prompt)
    prompt.add_argument("--tokenizer", metavar="DIR_OR_ID",
                        help="stage-1 checkpoint holding tokenizer.model (default: m-a-p/YuE-s1-7B-anneal-en-cot, or "
                             "DIR/s1 with --tiny)")
    prompt.add_argument("--tiny", type=Path, metavar="DIR",
                        help="tiny checkpoints from `python -m yue tiny DIR`: its tokenizer and codec (default: none)")
    prompt.add_argument("--codec", metavar="DIR_OR_ID",
                        help="xcodec_mini_infer folder or Hub id, to encode reference audio (default: DIR/"
                             "xcodec_mini_infer with --tiny)")
    _out_file(prompt, "FILE.json",
              "JSON file to write: uses_reference, labels (section tags) and sections (ids per section)")
    _reference_flags(prompt)


def _stage2(commands) -> None:
    s2 = _command(commands, "stage2", "stage 2 alone: (1, T) codebook-0 codes -> (8, T) codes",
                  "python -m yue stage2 song/stage1_vocal.npy --model tiny/s2 --out stage2_vocal.npy")
    s2.add_argument("codes", type=Path, metavar="CODES.npy",
                    help="(1, T) or (T,) integer codebook-0 codes 0..1023 of one track, e.g. the stage1_vocal.npy or "
                         "stage1_instrumental.npy that `generate` writes")
    s2.add_argument("--model", required=True, metavar="DIR_OR_ID",
                    help=f"stage-2 checkpoint, e.g. {STAGE2_REPO} or DIR/s2 of `yue tiny DIR`")
    _out_file(s2, "FILE.npy", "where to save the (8, T) codes")
    s2.add_argument("--batch", type=int, metavar="ROWS",
                    help="6-second rows decoded at once (default: as many as half the free memory holds)")
    _device_flag(s2)


def _codec_flag(parser) -> None:
    parser.add_argument("--codec", required=True, metavar="DIR_OR_ID",
                        help=f"xcodec_mini_infer folder or Hub id, e.g. {CODEC_REPO}")


def _decode(commands) -> None:
    dec = _command(commands, "decode", f"(K, T) codes -> audio: {CODEC_RATE // 1000} kHz from the codec, or "
                   f"{OUTPUT_RATE / 1000:g} kHz through an upsampler",
                   "python -m yue decode song/stage2_vocal.npy --codec tiny/xcodec_mini_infer --upsampler vocal "
                   "--out vocal.wav")
    dec.add_argument("codes", type=Path, metavar="CODES.npy",
                     help=f"(K, T) or (T,) integer codes 0..1023, K codebooks (1 to {CODEBOOKS}; stage2_*.npy has "
                          f"8), {FRAME_RATE} frames a second")
    _codec_flag(dec)
    dec.add_argument("--upsampler", choices=["vocal", "instrumental"],
                     help=f"the codec's Vocos upsampler for this kind of track, to {OUTPUT_RATE / 1000:g} kHz as "
                          f"`generate` renders (default: none, the codec's own {CODEC_RATE // 1000} kHz)")
    _out_file(dec, "FILE", ".npy (float32 samples), .wav, .flac or .mp3")
    _device_flag(dec)


def _encode(commands) -> None:
    enc = _command(commands, "encode", "audio file -> (N, T) codes, e.g. codebook-0 codes for --reference",
                   "python -m yue encode reference.wav --codec tiny/xcodec_mini_infer --out reference.npy")
    enc.add_argument("audio", metavar="AUDIO",
                     help=f"audio file (wav, flac, mp3, ogg); mixed to mono and resampled to {CODEC_RATE // 1000} kHz")
    _codec_flag(enc)
    enc.add_argument("--codebooks", type=int, default=1, metavar="N",
                     help=f"codebooks to keep, 1 to {CODEBOOKS}: 1 for stage-1 references (default %(default)s)")
    _out_file(enc, "FILE.npy", f"where to save the (N, T) codes, {FRAME_RATE} frames a second")
    _device_flag(enc)


def _tiny(commands) -> None:
    tiny = _command(commands, "tiny", "write tiny random checkpoints (offline tests and demos; their output is noise)",
                    "python -m yue tiny tiny   # then: python -m yue generate --tiny tiny ...")
    tiny.add_argument("dir", type=Path, metavar="DIR",
                      help="folder to write s1/ (stage-1 LM and tokenizer), s2/ (stage-2 LM) and xcodec_mini_infer/ "
                           "(codec and upsamplers) into")
    tiny.add_argument("--seed", type=int, default=0, help="seed of the random weights (default %(default)s)")
    tiny.add_argument("--no-codec", action="store_true",
                      help="write only the two LMs and the tokenizer (default: the codec too)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m yue", formatter_class=Formatter,
                                     description="YuE v1 lyrics-to-song inference. `python -m yue COMMAND --help` "
                                                 "says what each command's flags are.",
                                     epilog="example:\n  python -m yue tiny tiny && python -m yue generate --tiny tiny "
                                            "--genre pop --lyrics-file lyrics.txt --out song/")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_generate, _prompt, _stage2, _decode, _encode, _tiny):
        add(commands)
    return parser
