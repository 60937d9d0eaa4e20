"""What a request needs before any model work: its checks (every field named, with what to do) and its stage-1
prompt (CoT, ICL and/or the kept sections of a song to continue)."""
from __future__ import annotations

import numpy as np

from . import checks
from .config import ALL_SECTIONS, CONTEXT_TOKENS, DEFAULT_SECTIONS, Limits, Sampling
from .text.prompt import (FRAMES_PER_SECOND, build_prompt, check_context, check_genres, check_window_fits,
                          codes_to_stage1_ids, parse_lyrics)
from .song import SongCodes, SongRequest
from .lm.stage1 import SectionTokens


def check_request(request: SongRequest, limits: Limits = Limits(), tokenizer=None):
    """Validate a request before any model work; returns (sections, warnings). Raises ValueError (LyricsError for
    text) with a message that names the field and what to do. With a tokenizer, also checks the context fits."""
    check_genres(checks.text(request.genres, "genres"), limits)
    if not isinstance(request.sampling, Sampling):
        raise ValueError(f"sampling must be a yue.Sampling, got {type(request.sampling).__name__}")
    request.sampling.check()
    if request.seed is not None:
        checks.seed(request.seed)
    checks.number(request.takes, "takes", 1, limits.max_takes, whole=True)
    if request.reference is not None:
        request.reference.check()
    if request.previous is not None:
        request.previous.check("the song to continue")
    lyrics = parse_lyrics(checks.text(request.lyrics, "lyrics"), limits)
    sections = lyrics.sections
    if isinstance(request.segments, str) and request.segments != ALL_SECTIONS:
        raise ValueError(f"segments must be a whole number, {ALL_SECTIONS!r} or None (the official "
                         f"{DEFAULT_SECTIONS}), got {request.segments!r}")
    if request.segments is not None and request.segments != ALL_SECTIONS:
        checks.number(request.segments, "segments", 1, whole=True)
        if request.segments > len(sections):
            raise ValueError(f"segments is {request.segments} but the lyrics have only {len(sections)} sections; ask "
                             f"for at most {len(sections)}")
    kept = 0 if request.previous is None else len(request.previous.stage1.section_frames)
    if request.previous is not None and kept >= len(sections):
        raise ValueError(f"The song to continue already has {kept} sections; the lyrics must list those sections "
                         "followed by at least one new section.")
    if request.segments not in (None, ALL_SECTIONS) and request.segments <= kept:
        # segments counts the finished song's sections: this many are kept already, so nothing would be made
        raise ValueError(f"segments is {request.segments} but the song to continue already has {kept} sections: "
                         f"segments counts the finished song's sections, kept ones included; ask for more than "
                         f"{kept}")
    if tokenizer is not None:
        reference = None if request.reference is None else request.reference.ids()
        rate = FRAMES_PER_SECOND * (1 if request.reference is None or request.reference.codes is not None else 2)
        check_context(tokenizer, request.genres, sections, reference, prompt_room(request.sampling), rate)
    return sections, lyrics.warnings


def prompt_room(sampling: Sampling) -> int:
    """The ids the first prompt may hold: the context less a section's new tokens and its <EOA>."""
    return CONTEXT_TOKENS - sampling.max_new_tokens - 1


def check_reference_window(window_s: float, tracks: int, sampling: Sampling) -> None:
    """Before a reference of `tracks` (1: a mix, 2: a vocal + instrumental pair) is encoded: its window's ids fit in
    the first prompt at all (`check_request` checks them exactly, with the lyrics, once they are encoded)."""
    check_window_fits(window_s, FRAMES_PER_SECOND * tracks, prompt_room(sampling))


def request_prompt(tokenizer, request: SongRequest, limits: Limits = Limits(), sections=None):
    """The stage-1 prompt of a request: CoT, ICL (reference) and/or continuation (kept sections as audio ids).
    `sections`: the request's lyric sections when the caller has already checked it."""
    if sections is None:
        sections, _ = check_request(request, limits)
    done = () if request.previous is None else kept_ids(request.previous)
    reference = None if request.reference is None else request.reference.ids()
    return build_prompt(tokenizer, request.genres, sections, reference, done)


def kept_ids(song: SongCodes) -> tuple[np.ndarray, ...]:
    """The interleaved stage-1 audio ids of each section of a song to continue."""
    done, tokens, start = [], song.stage1, 0
    for frames in tokens.section_frames:
        done.append(codes_to_stage1_ids(tokens.vocal[start:start + frames], tokens.instrumental[start:start + frames]))
        start += frames
    return tuple(done)



def kept_sections(song: SongCodes | None) -> list[SectionTokens]:
    """The sections of a song to continue, as stage 1 yields kept sections."""
    if song is None:
        return []
    tokens, ends = song.stage1, np.cumsum((0, *song.stage1.section_frames))
    labels = tokens.labels or ("",) * len(tokens.section_frames)
    return [SectionTokens(index, label, tokens.vocal[a:b], tokens.instrumental[a:b], False)
            for index, (label, a, b) in enumerate(zip(labels, ends[:-1], ends[1:]))]

def check_takes_songs(takes: int, previous: list[SongCodes]) -> None:
    """Songs that continue take by take: one per take, the same number of sections each, each a song."""
    if len(previous) != takes:
        raise ValueError(f"{len(previous)} songs to continue for {takes} takes: give one per take")
    counts = [len(song.stage1.section_frames) for song in previous]
    if len(set(counts)) != 1:
        raise ValueError(f"The takes' songs to continue have {counts} sections: each take must keep as many")
    for take, song in enumerate(previous):
        song.check(f"take {take + 1}'s song to continue")
