"""Our own curated style tags by category, and how picked tags and free text become one genre string.

YuE reads the genre prompt as free text; it was trained on tags of five kinds (genre, instrument, mood, vocal
gender, vocal timbre), so the picker offers a short list of each. The lists are ours, chosen for variety; any other
words typed by the user are kept as they are.
"""
from __future__ import annotations

import re

# Category order is the order tags are written in the genre string: what the song is, what plays, how it feels,
# who sings, how the voice sounds (the order of the official prompt examples).
TAGS: dict[str, tuple[str, ...]] = {
    "genre": (
        "pop", "rock", "hard rock", "indie", "folk", "country", "blues", "jazz", "soul", "r&b", "funk", "disco",
        "hip-hop", "rap", "trap", "electronic", "house", "techno", "edm", "synthwave", "ambient", "lo-fi",
        "reggae", "latin", "bossa nova", "metal", "punk", "gospel", "classical", "cinematic", "ballad",
        "k-pop", "j-pop", "c-pop", "city pop", "dream pop",
    ),
    "instrument": (
        "piano", "acoustic guitar", "electric guitar", "bass guitar", "drums", "synthesizer", "strings",
        "violin", "cello", "saxophone", "trumpet", "brass", "flute", "harp", "organ", "rhodes", "808",
        "drum machine", "percussion", "ukulele", "banjo", "harmonica", "accordion", "choir", "pads", "bells",
    ),
    "mood": (
        "happy", "sad", "uplifting", "melancholic", "romantic", "energetic", "calm", "dreamy", "dark", "angry",
        "hopeful", "nostalgic", "playful", "epic", "tender", "groovy", "chill", "intense", "bittersweet",
        "inspiring", "mysterious", "peaceful", "triumphant", "lonely",
    ),
    "gender": (
        "female", "male", "female vocal", "male vocal", "duet", "choir vocal", "child vocal",
    ),
    "timbre": (
        "bright vocal", "warm vocal", "airy vocal", "breathy vocal", "husky vocal", "powerful vocal",
        "soft vocal", "raspy vocal", "smooth vocal", "deep vocal", "clear vocal", "gritty vocal", "sweet vocal",
        "falsetto", "whisper vocal", "nasal vocal", "rich vocal", "vibrato vocal", "soulful vocal",
        "emotional vocal",
    ),
}
CATEGORIES = tuple(TAGS)


def _known_pattern() -> re.Pattern:
    """Every known tag as a whole-word match, longest first so 'bright vocal' wins over 'vocal'-like overlaps."""
    tags = sorted({t for group in TAGS.values() for t in group}, key=len, reverse=True)
    return re.compile(r"(?<![\w&-])(" + "|".join(re.escape(t) for t in tags) + r")(?![\w&-])", re.IGNORECASE)


def find_tags(text: str) -> dict[str, list[str]]:
    """The known tags found in `text`, by category, in list order (for syncing the picker to typed text)."""
    found = {m.group(1).lower() for m in _known_pattern().finditer(text or "")}
    return {category: [t for t in tags if t in found] for category, tags in TAGS.items()}


def free_words(text: str) -> str:
    """`text` without the known tags: the words only the user typed."""
    return " ".join(_known_pattern().sub(" ", text or "").split())


def compose(picked: dict[str, list[str]], free_text: str = "") -> str:
    """The genre string: picked tags in category order, then the user's other words, without duplicates."""
    words: list[str] = []
    for category in CATEGORIES:
        for tag in picked.get(category, ()):
            if tag not in words:
                words.append(tag)
    extra = free_words(free_text)
    return " ".join(words + ([extra] if extra else []))


def set_category(text: str, category: str, picked: list[str]) -> str:
    """`text` with the known tags of one category replaced by `picked` (what a picker sets); the other categories'
    tags and the free words stay as typed, so a picker never undoes typing it has not caught up with."""
    found = find_tags(text)
    found[category] = list(picked or [])
    return compose(found, text)
