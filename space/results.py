"""What a run of the Space shows: each take's files and the words beside them. Nothing here imports gradio."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from yue.audio import write_audio
from yue.eta import describe_left
from yue.song import Progress, Song, SongCodes, Unfinished
from yue.text.prompt import FRAMES_PER_SECOND
from .song_progress import SongState

KINDS = ("mix", "vocal", "instrumental", "bundle")  # a take's files, in the order the endpoints return them
# The steps of a section in a musician's words (the page's Details and the docs keep the model's names: stage 1 ...)
STEP_WORDS = {"stage1": "composing", "stage2": "adding detail", "audio": "rendering the audio"}
TOKENS_PER_SECOND = 2 * FRAMES_PER_SECOND  # stage 1 writes a vocal and an accompaniment token for each frame

@dataclass(frozen=True)
class TakeFiles:
    """The files of one take of the song so far (None: no audio, a token-only pipeline) and its seed."""

    take: int  # 1-based
    seed: int
    mix: str | None
    vocal: str | None
    instrumental: str | None
    bundle: str  # the code bundle: what continues this take exactly
    kept: int | None = None  # the take of the run before that was kept, which every take here goes on from

    @property
    def files(self) -> list[str | None]:
        return [self.mix, self.vocal, self.instrumental, self.bundle]

    def as_dict(self) -> dict:
        return asdict(self)


def write_song(folder: Path, song: Song, done: int, total: int, fmt: str, settings: dict,
               prefix: str = "") -> list[str | None]:
    """Files of the song so far: [mix, vocal, instrumental, bundle]. Names carry 'done of total' so a partial song
    is not mistaken for a finished one (and `prefix`, e.g. the take)."""
    name = f"{done}of{total}"
    bundle = str(song.codes.save(folder / f"{prefix}song-{name}.npz", {**settings, "sections_done": done}))
    if song.mix.size == 0:  # a token-only pipeline (no codec): codes, no audio
        return [None, None, None, bundle]
    tracks = (("mix", song.mix), ("vocal", song.vocal), ("instrumental", song.instrumental))
    audio = [write_audio(folder / f"{prefix}{kind}-{name}.{fmt}", samples, song.sample_rate)
             for kind, samples in tracks]
    return [str(path) for path in audio] + [bundle]


def write_take(folder: Path, song: Song, take: int, takes: int, done: int, total: int, fmt: str,
               settings: dict, kept: int | None = None) -> TakeFiles:
    """Take `take` (1-based) of `takes`: its files (named take<t>-… when there are several) and a bundle whose
    settings hold the take and its own seed, so continuing it with that seed and one take is exact."""
    prefix = f"take{take}-" if takes > 1 else ""
    files = write_song(folder, song, done, total, fmt, {**settings, "take": take, "seed": song.seed}, prefix)
    return TakeFiles(take, song.seed, *files, kept)


def write_unfinished(folder: Path, codes: SongCodes, state: Unfinished, take: int, takes: int, done: int, total: int,
                     settings: dict, seed: int, shown: TakeFiles | None = None) -> TakeFiles:
    """Take `take` (1-based) when a run ends inside a section: a bundle of its finished sections (`codes`) and its
    part of the section under way (`state`, that take's), which continuing resumes exactly; with the audio files of
    its finished sections (`shown`, None when none is finished)."""
    prefix = f"take{take}-" if takes > 1 else ""
    bundle = replace(codes, unfinished=state).save(folder / f"{prefix}song-{done}of{total}-unfinished.npz",
                                                   {**settings, "sections_done": done, "take": take, "seed": seed})
    audio = shown.files[:3] if shown is not None else [None, None, None]
    return TakeFiles(take, seed, *audio, str(bundle), None if shown is None else shown.kept)


def summary(song: Song | None, done: int, total: int, elapsed: float, timings: dict, stopped: bool,
            takes: int = 1, kept: str = "") -> str:
    """The run in words; `song` is take 1 (the others have the next seeds); `kept`: which take it went on from;
    `elapsed`: seconds from the start of the run (loading the models and reading a reference included)."""
    if song is None:
        return "Stopped before the first section was finished; nothing to keep." if stopped else "Nothing was made."
    head = "Stopped" if stopped else "Done"
    parts = ", ".join(f"{STEP_WORDS.get(k.removesuffix('_s'), k)} {v:.1f} s" for k, v in timings.items())
    lines = [f"{head}: {done} of {total} sections, {song.seconds:.1f} s of audio in {elapsed:.1f} s"
             f"{f' ({parts})' if parts else ''}.", f"Seed {song.seed}."]
    if takes > 1:
        last = song.seed + takes - 1
        lines.append(f"{takes} takes, seeds {song.seed} to {last} (take 1 has seed {song.seed}, take 2 the next …).")
    if kept:
        lines.append(kept)
    if song.mix.size == 0:
        lines.append("No audio: this pipeline has no codec loaded (token-only); the song file (.npz) holds the result.")
    return "\n".join(lines + [f"⚠ {w}" for w in song.warnings])


def details(timings: dict, max_new_tokens: int, precision: str, step: str = "") -> str:
    """The run's technical detail (the page folds it away): each step under its model name, the token budget, the
    precision, and `step`, the step running now in tokens or frames (`step_detail`)."""
    stages = ", ".join(f"{k.removesuffix('_s').replace('stage', 'stage ')} {v:.1f} s" for k, v in timings.items())
    lines = [step] if step else []
    if stages:
        lines.append(f"Time per step, all sections so far: {stages}.")
    lines.append(f"{max_new_tokens} stage-1 tokens at most per section ({TOKENS_PER_SECOND} tokens = 1 s of music); "
                 f"precision {precision}. Composing is stage 1 (the 7B model writes vocal and accompaniment tokens), "
                 "adding detail is stage 2 (the 1B model fills in the codec's finer codes), rendering is the codec's "
                 "decoder.")
    return "\n".join(lines)


API_NAME = re.compile(r" \([a-z]+(?:_[a-z]+)+\)")  # " (cut_seconds)": a message's name of the API's field


def for_page(text: str) -> str:
    """A message as the page shows it: without the API's field names beside the page's own ("The cut time
    (cut_seconds) must be …" -> "The cut time must be …"); API callers get them."""
    return API_NAME.sub("", text)


def kept_note(take: int | None, seed: int | None) -> str:
    """Which take a run went on from, in words ("" when it did not go on from a kept take)."""
    if take is None:
        return ""
    return f"Went on from take {take}{f' (seed {seed})' if seed is not None else ''}, the take you kept."


def plural(count: int, noun: str) -> str:
    """'1 section', '2 sections'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def progress_text(event: Progress, new_done: int, new_total: int, audio_s: float, elapsed_s: float,
                  song: SongState | None = None) -> str:
    """A run in progress, in two lines: the step in music's words (how much of the section's music it has, and the
    time left in it: `event.eta_s`, None while the pipeline is still estimating) and the run (new sections done, the
    song's audio so far, time elapsed, and with `song` the whole song's share done and time left), e.g.
    "Section 1/2: composing, 1.2 of at most 3.0 s of music, at most about 5 s left" and
    "0 of 2 new sections done (12%), no audio yet; 12 s elapsed, about 1 min 30 s left for the song"."""
    word = STEP_WORDS.get(event.stage, event.stage)
    if event.stage == "stage1":  # stage 1 may stop before its token budget (at the end-of-audio token)
        where = f"{event.done / TOKENS_PER_SECOND:.1f} of at most {event.total / TOKENS_PER_SECOND:.1f} s of music"
    else:
        where = f"{event.done / event.total:.0%}" if event.total else ""
    left = describe_left(event.eta_s, upper_bound=event.stage == "stage1")
    step = f"Section {event.section + 1}/{event.sections}: {word}{f', {where}' if where else ''}, {left}"
    audio = f"the song so far is {audio_s:.1f} s of audio" if audio_s > 0 else "no audio yet"
    share = f" ({song.fraction:.0%})" if song else ""
    whole = f", {describe_left(song.left_s).replace('…', '')} for the song" if song else ""
    return (f"{step}\n{new_done} of {plural(new_total, 'new section')} done{share}, {audio}; {elapsed_s:.0f} s "
            f"elapsed{whole}")


def step_detail(event: Progress) -> str:
    """The step running now in the model's units, e.g. 'Section 1/2: stage1 120/300 tokens at 40.0 tokens/s'."""
    what = {"stage1": "tokens", "stage2": "frames"}.get(event.stage, "")
    speed = f" at {event.rate:.1f} {what}/s" if event.rate else ""
    return f"Section {event.section + 1}/{event.sections}: {event.stage} {event.done}/{event.total} {what}{speed}"


def call_phrase(call: int, calls: int, section: int) -> str:
    """'GPU call 2 of 3 of section 2' when a section takes several ZeroGPU calls (`calls`: an estimate, at least
    `call`), else nothing."""
    return f"GPU call {call} of {calls} of section {section + 1}" if calls > 1 else ""


def part_text(state: Unfinished, max_new_tokens: int) -> str:
    """How far a section under way got, e.g. 'section 2 up to token 1350 of 3000 of stage 1' (frames of stage 2:
    over every track)."""
    if state.stage1 is not None:
        return f"section {state.section + 1} up to token {state.stage1.step} of {max_new_tokens} of stage 1"
    return f"section {state.section + 1} with stage 1 done and {sum(p.frames for p in state.rows)} frames of stage 2"


def ended_text(reason: str, done: int, total: int, audio_s: float, part: Unfinished | None, max_new_tokens: int,
               seeds: list[int]) -> str:
    """A run that ZeroGPU ended before the song was done (`reason`: why, in spaces' words): what is kept, where,
    and what to do to go on (`seeds`: each take's)."""
    kept = [f"{done} of {plural(total, 'section')} ({audio_s:.0f} s of audio)"] if done else []
    if part is not None:
        kept.append(f"the part of {part_text(part, max_new_tokens)}")
    if not kept:
        return f"{reason.strip()}\nNothing was made yet, so there is nothing to keep: try again when your quota is back."
    where = "each take's song bundle (.npz)" if len(seeds) > 1 else "the song bundle (.npz)"
    how = "press Continue this song → (or upload the bundle in the Continue a song tab) when your quota is back"
    if part is None:
        return f"{reason.strip()}\nKept in {where}: {' and '.join(kept)}.\nTo go on, {how}."
    return (f"{reason.strip()}\nKept in {where}: {' and '.join(kept)}.\nTo go on, {how}, with {go_on_setting(seeds)}: "
            f"section {part.section + 1} resumes exactly where it stopped.")


def go_on_setting(seeds: list[int]) -> str:
    """The setting that resumes a kept part exactly: its take's seed (each take's bundle goes on as 1 take)."""
    seeds_text = ", ".join(f"take {take}: seed {seed}" for take, seed in enumerate(seeds, start=1))
    return f"1 take and its seed ({seeds_text})" if len(seeds) > 1 else f"seed {seeds[0]}"


def stopped_text(text: str, part: Unfinished, max_new_tokens: int, seeds: list[int]) -> str:
    """A run stopped inside a section (`text`: its summary): the section's part is kept too, and how to go on."""
    where = "each take's song bundle (.npz)" if len(seeds) > 1 else "the song bundle (.npz)"
    return (f"{text}\nKept in {where} as well: the part of {part_text(part, max_new_tokens)}. To go on, press "
            f"Continue this song → (or upload the bundle in the Continue a song tab) with {go_on_setting(seeds)}: "
            f"section {part.section + 1} resumes exactly where it stopped.")


@dataclass(frozen=True)
class Update:
    """What a run shows next: always a text; the seed once it is known; every take's files when a section is done;
    (call, calls) of the section's ZeroGPU calls while it takes several."""

    text: str
    seed: int | None = None
    takes: list[TakeFiles] | None = None
    song: SongState | None = None  # the whole song's share done and time left (None: not started yet)
    call: tuple[int, int] | None = None  # (k, n): GPU call k of the n this section takes
    details: str | None = None  # the technical detail the page folds away (None: as before)
    row: object | None = None  # a space.row_audio.RowHeard: the next piece of a take's audio, heard while made

    @property
    def files(self) -> list[str | None] | None:
        """Take 1's [mix, vocal, instrumental, bundle]; its bundle is the song "Continue this song" continues."""
        return None if self.takes is None else self.takes[0].files


def listing(made: list[dict] | None) -> tuple[list[str], list[dict]]:
    """Every take's files in take order (mix, vocal, instrumental, bundle: those that exist) and a table with each
    take's number, seed and file names (`made`: `TakeFiles.as_dict()` of each take; None: no run yet)."""
    files, table = [], []
    for take in made or []:
        files.extend(take[kind] for kind in KINDS if take[kind])
        names = {kind: Path(take[kind]).name if take[kind] else None for kind in KINDS}
        table.append({"take": take["take"], "seed": take["seed"], **names})
    return files, table
