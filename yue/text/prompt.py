"""Lyrics -> sections, and the stage-1 prompt ids of every mode, token-identical to the official code (SPEC §3.2-3.5)."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from ..config import CONTEXT_TOKENS, Limits
from ..rates import FRAME_RATE
from .tokens import CONTROL_PIECE, EOA, SOA, XCODEC, Tokenizer, codes_to_ids, deinterleave, ids_to_codes, interleave

# xcodec's frame rate (named once in rates.py); stage 1 emits two ids (vocal, instrumental) per frame
FRAMES_PER_SECOND = FRAME_RATE
SECTION_PATTERN = re.compile(r"\[(\w+)\](.*?)(?=\[|\Z)", re.DOTALL)  # the official split, quirks included
INSTRUCTION = "Generate music from the given lyrics segment by segment.\n[Genre] "
START_OF_SEGMENT = "[start_of_segment]"
END_OF_SEGMENT = "[end_of_segment]"
START_OF_REFERENCE = "[start_of_reference]"
END_OF_REFERENCE = "[end_of_reference]"
PROMPT_MARKERS = (START_OF_SEGMENT, END_OF_SEGMENT, START_OF_REFERENCE, END_OF_REFERENCE)  # never in user text
LYRICS_EXAMPLE = "[verse]\nfirst line of the verse\nsecond line\n\n[chorus]\nthe chorus lines"


class LyricsError(ValueError):
    """Lyrics or genre text the pipeline cannot use; the message says what to change."""


@dataclass(frozen=True)
class Section:
    label: str  # e.g. "verse", "chorus"
    text: str  # "[label]\n" + stripped body + "\n\n", exactly as the official code builds it

    @property
    def body(self) -> str:
        return self.text[len(self.label) + 3:].rstrip("\n")


@dataclass(frozen=True)
class Lyrics:
    sections: tuple[Section, ...]
    warnings: tuple[str, ...] = ()


def normalize_lyrics(lyrics: str) -> str:
    """Line endings as the official code reads a lyrics file (text mode: CRLF and CR become LF), no UTF-8 BOM."""
    return unix_lines(lyrics.removeprefix("\ufeff"))


def unix_lines(text: str) -> str:
    """CRLF and CR line breaks as LF: a line break is one thing whichever system typed it."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def split_lyrics(lyrics: str) -> list[Section]:
    """The official split: every `[label]` starts a section running to the next '[' (text before the first tag is
    dropped), on normalized line endings."""
    return [Section(label, f"[{label}]\n{body.strip()}\n\n")
            for label, body in SECTION_PATTERN.findall(normalize_lyrics(lyrics))]


def _quoted(lines: list[str], most: int = 3) -> str:
    shown = [repr(line if len(line) <= 40 else line[:37] + "...") for line in lines[:most]]
    return ", ".join(shown) + (f" and {len(lines) - most} more" if len(lines) > most else "")


def _line(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _dropped_piece(lyrics: str, start: int, piece: str) -> str:
    """Why the official rule drops `piece` (it starts with a '[' that opens no section tag), and what to write."""
    line = _line(lyrics, start)
    lines = [text.strip() for text in piece.splitlines() if text.strip()]
    dropped = f"{'this line is' if len(lines) == 1 else f'these {len(lines)} lines are'} dropped: {_quoted(lines)}"
    bad = re.match(r"\[([^\]\n]*)\]?", piece).group(0)
    if lyrics[lyrics.rfind("\n", 0, start) + 1:start].strip():  # inside a line: a '[' ends the section there
        brackets = "the brackets" if bad.endswith("]") else "the '['"
        return (f"Line {line}: a '[' inside a line ends the section under the official rule, so from {bad!r} on "
                f"{dropped}. Leave out {brackets}.")
    word = "".join(re.findall(r"[^\W\d_]+", bad)).lower() or "verse"
    what = ("is not a section tag under the official rule (one word in brackets: letters, digits or _)"
            if bad.endswith("]") else "has no closing ']'")
    return f"Line {line}: {bad!r} {what}, so {dropped}. Write [{word}] to keep them."


def lyric_warnings(lyrics: str) -> list[str]:
    """What the official split leaves out, in words: text before the first tag, every line under a '[' that opens
    no section tag ([pre-chorus], [Verse 2], [], [verse), and a [word] inside a line, which starts a section."""
    matches = list(SECTION_PATTERN.finditer(lyrics))
    edges = [0, *[edge for m in matches for edge in (m.start(), m.end())], len(lyrics)]
    warnings = []
    for start, end in zip(edges[::2], edges[1::2]):
        gap = lyrics[start:end]
        # a gap after a section starts with the '[' that ended it; each line opening with '[' is one more bad tag
        cuts = sorted({0, *(m.start() for m in re.finditer(r"(?m)^[ \t]*\[", gap))})
        for lo, hi in zip(cuts, [*cuts[1:], len(gap)]):
            piece = gap[lo:hi].strip()
            if not piece:
                continue
            if piece.startswith("["):
                warnings.append(_dropped_piece(lyrics, start + gap.index(piece, lo), piece))
            else:
                warnings.append(f"Text before the first section tag is ignored: {piece[:60]!r}")
    for m in matches:
        before = lyrics[lyrics.rfind("\n", 0, m.start()) + 1:m.start()]
        if before.strip():
            rest = m.group(2).split("\n", 1)[0].strip()
            sung = f" (sung: {rest!r})" if rest else ""
            warnings.append(f"Line {_line(lyrics, m.start())}: [{m.group(1)}] inside a line starts a new section "
                            f"under the official rule{sung}. Put section tags on their own line, or leave out the "
                            "brackets.")
    return warnings


def check_text(text: str, what: str) -> None:
    """Refuse what the tokenizer or the prompt would not read as words: control characters (NUL, ESC sequences …:
    bytes nobody sees), control-token names (`<SOA>` would become id 32001, tokens.CONTROL_PIECE) and the markers the
    prompt puts between sections (`[start_of_segment]` …). All other text is tokenized exactly as the official code
    does."""
    for index, char in enumerate(text):
        kind = unicodedata.category(char)
        if kind == "Cc" and char not in "\n\t":
            raise LyricsError(f"{what} hold a control character (U+{ord(char):04X}) on line {_line(text, index)}, "
                              "e.g. from a terminal's colour codes or a binary file: remove it.")
        if kind == "Cs":  # a lone surrogate: Python's stand-in for a byte that was not UTF-8 (argv, raw JSON)
            raise LyricsError(f"{what} hold a character that is not text (U+{ord(char):04X}, a lone surrogate) on "
                              f"line {_line(text, index)}: a byte that is not UTF-8, e.g. from a shell or file in "
                              "another encoding. Type it again, or save the text as UTF-8.")
    piece = CONTROL_PIECE.search(text)
    if piece:
        raise LyricsError(f"{what} hold {piece.group()!r} on line {_line(text, piece.start())}: that is the name of "
                          "one of the model's control tokens (audio markers and codes), not words. Remove it, or write "
                          "it without '<' and '>'.")
    for marker in PROMPT_MARKERS:
        if marker in text:
            raise LyricsError(f"{what} hold {marker!r} on line {_line(text, text.index(marker))}: the prompt itself "
                              "uses it to mark where sections and the reference start and end. Remove it.")


def parse_lyrics(lyrics: str, limits: Limits = Limits()) -> Lyrics:
    """`split_lyrics` plus the checks a user needs: raises LyricsError, returns warnings for what is dropped."""
    if not lyrics or not lyrics.strip():
        raise LyricsError(f"Lyrics are empty. Write sections that each start with a tag, e.g.\n{LYRICS_EXAMPLE}")
    if len(lyrics) > limits.max_lyrics_chars:
        raise LyricsError(f"Lyrics are {len(lyrics)} characters long; the limit is {limits.max_lyrics_chars}. Shorten them.")
    lyrics = normalize_lyrics(lyrics)
    check_text(lyrics, "Lyrics")
    doubled = next((m for m in re.finditer(r"\[+(\w+)\]+", lyrics) if len(m.group()) > len(m.group(1)) + 2), None)
    if doubled:  # the official rule reads [[verse]] as a '[' dropped, then [verse] whose lyrics start with ']'
        raise LyricsError(f"Lyrics hold {doubled.group()!r} on line {_line(lyrics, doubled.start())}: a section tag "
                          f"has one pair of brackets (the extra ones would be sung or drop lines). Write "
                          f"[{doubled.group(1)}].")
    sections, warnings = split_lyrics(lyrics), lyric_warnings(lyrics)
    dropped = "".join(f"\n{w}" for w in warnings if " dropped: " in w)
    if not sections:
        raise LyricsError(
            "Lyrics have no section tags. Start each section with a tag in square brackets on its own line, "
            f"e.g.\n{LYRICS_EXAMPLE}{dropped}"
        )
    for number, section in enumerate(sections, start=1):
        if not section.body.strip():
            raise LyricsError(f"Section {number} [{section.label}] is empty: add its lyrics lines or remove the tag."
                              f"{dropped}")
    if len(sections) > limits.max_sections:
        raise LyricsError(f"Lyrics have {len(sections)} sections; the limit is {limits.max_sections}. Remove some.")
    return Lyrics(tuple(sections), tuple(warnings))


def check_genres(genres: str, limits: Limits = Limits()) -> str:
    genres = unix_lines(genres or "").strip()
    check_text(genres, "Genre tags")
    if not genres:
        raise LyricsError("Genre tags are empty. Give a few space-separated tags, e.g. 'pop female bright vocal piano'.")
    if len(genres) > limits.max_genre_chars:
        raise LyricsError(f"Genre tags are {len(genres)} characters; the limit is {limits.max_genre_chars}.")
    return genres


def header_text(genres: str, sections) -> str:
    return INSTRUCTION + unix_lines(genres).strip() + "\n" + "\n".join(s.text for s in sections)


def section_text(section: Section) -> str:
    return section.text.replace(START_OF_SEGMENT, "").replace(END_OF_SEGMENT, "")


def reference_window(codes_or_ids, start_s: float, end_s: float, ids_per_second: int) -> np.ndarray:
    """The official slice `ids[int(start * rate) : int(end * rate)]`, refusing an empty window."""
    ids = np.asarray(codes_or_ids).reshape(-1)
    length_s = ids.size / ids_per_second  # a window reaching past the end ends with it (and 1e308 cannot overflow)
    lo, hi = int(min(start_s, length_s) * ids_per_second), int(min(end_s, length_s) * ids_per_second)
    window = ids[lo:hi]
    if start_s < 0 or window.size == 0:
        seconds = ids.size / ids_per_second
        raise LyricsError(
            f"Reference window {start_s:g}-{end_s:g} s is empty; the reference is {seconds:.1f} s long. "
            "Choose 0 <= start < end within it (about 30 s is recommended)."
        )
    return window


def single_reference_ids(codes: np.ndarray, start_s: float = 0.0, end_s: float = 30.0) -> np.ndarray:
    """Codebook-0 codes of one mixed (or single) reference track -> windowed stage-1 ids."""
    return reference_window(codes_to_ids(np.asarray(codes).reshape(1, -1)), start_s, end_s, FRAMES_PER_SECOND)


def dual_reference_ids(vocal_codes, instrumental_codes, start_s: float = 0.0, end_s: float = 30.0) -> np.ndarray:
    """Vocal and instrumental codebook-0 codes -> interleaved (vocal first) windowed stage-1 ids."""
    vocal = codes_to_ids(np.asarray(vocal_codes).reshape(1, -1))
    instrumental = codes_to_ids(np.asarray(instrumental_codes).reshape(1, -1))
    return reference_window(interleave(vocal, instrumental), start_s, end_s, 2 * FRAMES_PER_SECOND)


@dataclass(frozen=True)
class Stage1Prompt:
    """What stage 1 feeds the model: before section i it appends `pieces[i]`, then generates that section's audio ids.

    `done[i]` (continuation) holds interleaved audio ids of section i that are already made: they are appended as if
    generated (followed by <EOA>), so generation resumes after them.
    """

    pieces: tuple[tuple[int, ...], ...]
    done: tuple[np.ndarray, ...] = ()
    uses_reference: bool = False
    labels: tuple[str, ...] = field(default=())


def build_prompt(
    tokenizer: Tokenizer,
    genres: str,
    sections,
    reference_ids: np.ndarray | None = None,
    done: tuple[np.ndarray, ...] = (),
) -> Stage1Prompt:
    """Prompt pieces for every section (CoT when `reference_ids` is None, else ICL), SPEC §3.3."""
    sections = list(sections)
    tok = tokenizer.tokenize
    header = tok(header_text(genres, sections))
    if reference_ids is not None:
        reference = [int(i) for i in np.asarray(reference_ids).reshape(-1)]
        header += tok(START_OF_REFERENCE) + [SOA, XCODEC] + reference + [EOA] + tok(END_OF_REFERENCE)
    pieces = []
    for index, section in enumerate(sections):
        opening = header if index == 0 else tok(END_OF_SEGMENT)
        pieces.append(tuple(opening + tok(START_OF_SEGMENT) + tok(section_text(section)) + [SOA, XCODEC]))
    if len(done) > len(sections):
        raise LyricsError(f"{len(done)} sections are already made but the lyrics have only {len(sections)}")
    return Stage1Prompt(tuple(pieces), tuple(np.asarray(d, dtype=np.int64) for d in done),
                        reference_ids is not None, tuple(s.label for s in sections))


def check_window_fits(window_s: float, ids_per_second: int, max_context: int) -> None:
    """Refuse, before the reference is encoded, a window whose audio ids alone do not fit in `max_context` (what
    the first prompt may hold beside a section's new tokens; `ids_per_second`: 50 for one track, 100 for a vocal +
    instrumental pair). A window that passes is checked with the lyrics, exactly, by `check_context`."""
    ids = int(window_s * ids_per_second)
    framing = 3  # <SOA>, <xcodec> and <EOA> around the reference's ids: the least the prompt adds to them
    if ids + framing > max_context:
        room = (max_context - framing) // ids_per_second
        raise LyricsError(
            f"The reference window is too long: its {window_s:.1f} s take {ids} tokens, more than the {max_context} "
            f"that fit beside a section's new tokens. Make the window (end minus start) at most {room} s long (about "
            "30 s is recommended), or lower the tokens per section (max_new_tokens, --max-new-tokens).")


def check_context(tokenizer: Tokenizer, genres: str, sections, reference_ids, max_context: int,
                  reference_ids_per_second: int = FRAMES_PER_SECOND) -> None:
    """Refuse lyrics whose first prompt (the header repeats all lyrics) would be cut by the context limit. When the
    lyrics fit without the reference, the reference window is what is too long: the message says how long it may
    be (`reference_ids_per_second`: 50 for one track, 100 for a vocal + instrumental pair)."""
    sections = list(sections)
    first = lambda count, ids=reference_ids: len(build_prompt(tokenizer, genres, sections[:count], ids).pieces[0])
    needed = first(len(sections))
    if needed <= max_context:
        return
    if reference_ids is not None and first(len(sections), None) <= max_context:
        window = len(reference_ids) / reference_ids_per_second
        room = max(0, max_context - (needed - len(reference_ids))) // reference_ids_per_second
        raise LyricsError(
            f"The reference window is too long for these lyrics: its {window:.1f} s take {len(reference_ids)} "
            f"tokens, and the first prompt needs {needed} of the {max_context} that fit beside a section's new tokens. "
            f"Make the window (end minus start) at most {room} s long (about 30 s is recommended), or lower the "
            "tokens per section (max_new_tokens, --max-new-tokens).")
    fit = 0
    while fit < len(sections) and first(fit + 1) <= max_context:
        fit += 1
    raise LyricsError(
        f"Lyrics are too long: the first prompt needs {needed} tokens but only {max_context} fit in the "
        f"{CONTEXT_TOKENS}-token context beside a section's new tokens; only the first {fit} of {len(sections)} "
        "sections fit. Shorten the lyrics or the reference window, or lower the tokens per section (max_new_tokens, "
        "--max-new-tokens).")


def split_output(ids, uses_reference: bool) -> tuple[np.ndarray, np.ndarray]:
    """The official split of a stage-1 history into vocal and instrumental codebook-0 codes, each (1, T) (SPEC §3.5)."""
    ids = np.asarray(ids).reshape(-1)
    starts, ends = np.flatnonzero(ids == SOA), np.flatnonzero(ids == EOA)
    if len(starts) != len(ends):
        raise ValueError(f"invalid pairs of <SOA> ({len(starts)}) and <EOA> ({len(ends)}) in the stage-1 output")
    vocal, instrumental = [], []
    for start, end in list(zip(starts, ends))[1 if uses_reference else 0:]:
        audio = ids[start + 1:end]
        if audio.size and audio[0] == XCODEC:
            audio = audio[1:]
        v, i = deinterleave(audio)
        vocal.append(ids_to_codes(v, 1))
        instrumental.append(ids_to_codes(i, 1))
    empty = np.zeros((1, 0), dtype=np.int64)
    return (np.concatenate(vocal, axis=1) if vocal else empty,
            np.concatenate(instrumental, axis=1) if instrumental else empty)


def codes_to_stage1_ids(vocal_codes, instrumental_codes) -> np.ndarray:
    """Vocal and instrumental codebook-0 codes (T,) -> interleaved stage-1 audio ids (2T,)."""
    return interleave(codes_to_ids(np.asarray(vocal_codes).reshape(1, -1)),
                      codes_to_ids(np.asarray(instrumental_codes).reshape(1, -1)))
