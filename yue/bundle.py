"""A song bundle: the one .npz file that holds a song's codes and the settings that made them, written whole and read
back only after every member is checked (the arrays' headers, shapes, dtypes, ranges and what they agree on; the
settings' JSON and types). `yue.song.SongCodes.save` / `load` turn a song into a bundle and back."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from . import checks
from .arrays import ArrayFileError, Spec, check_arrays, read_npz
from .config import CONTEXT_TOKENS, Limits, Stage2Config
from .files import replacing
from .lm import cut_state
from .rates import CODEBOOK_SIZE
from .weights.registry import LANGUAGES, MODES

BUNDLE_VERSION = 1
# The longest song a bundle may hold: the most sections, each at the largest token budget (two ids a frame).
MAX_SONG_FRAMES = Limits().max_sections * (CONTEXT_TOKENS // 2) // 2
MAX_META_BYTES = 1 << 18  # the settings JSON: lyrics and genres are a few KB at most
BUNDLE = "a song bundle saved by this app"
CODES = (0, CODEBOOK_SIZE - 1)  # every code is a codebook entry
# Every array a bundle holds, declared once: dimensions (a size, or a name the arrays sharing it agree on), dtype
# kinds, values, at most how many, and whether it may be missing. `read_bundle` checks each member's header against
# it before reading it, then the arrays and AGREEMENTS; `SongCodes.check` checks a song in memory the same way.
BUNDLE_SPECS = {
    "stage1_vocal": Spec((1,), MAX_SONG_FRAMES, dims=("frames",), values=CODES, what="stage-1 vocal codes"),
    "stage1_instrumental": Spec((1,), MAX_SONG_FRAMES, dims=("frames",), values=CODES,
                                what="stage-1 instrumental codes"),
    "section_frames": Spec((1,), Limits().max_sections, dims=("sections",), values=(0, MAX_SONG_FRAMES),
                           what="section lengths (section_frames)"),
    "vocal": Spec((2,), Stage2Config.codebooks * MAX_SONG_FRAMES, dims=(Stage2Config.codebooks, "frames"),
                  values=CODES, what="stage-2 vocal codes", optional=True),
    "instrumental": Spec((2,), Stage2Config.codebooks * MAX_SONG_FRAMES, dims=(Stage2Config.codebooks, "frames"),
                         values=CODES, what="stage-2 instrumental codes", optional=True),
    "meta": Spec((1,), MAX_META_BYTES, "u"),
    **cut_state.SPECS,  # the section after the song's, stopped part-way (optional)
}
# What the arrays must agree on beyond their shared sizes: (the arrays a rule reads, the rule, what is wrong when
# it fails). A rule runs when every array it reads is there.
AGREEMENTS = (
    ((), lambda a: ("vocal" in a) == ("instrumental" in a), lambda a: "it has stage-2 codes for one track only"),
    (("stage1_vocal",), lambda a: a["stage1_vocal"].size > 0 or cut_state.PREFIX + "head" in a,
     lambda a: "it holds no frames (every section is empty): there is nothing to continue or render"),
    (("section_frames", "stage1_vocal"), lambda a: int(a["section_frames"].sum()) == a["stage1_vocal"].size,
     lambda a: f"its sections ({a['section_frames'].tolist()} frames) do not add up to its tracks' "
               f"{a['stage1_vocal'].size} frames"),
    *(((track, f"stage1_{track}"),
       lambda a, track=track: np.array_equal(a[track][0], a[f"stage1_{track}"]),
       lambda a, track=track: f"its stage-2 {track} codes' codebook 0 differs from its stage-1 {track} codes (stage "
                              "2 keeps the stage-1 codes as its codebook 0)")
      for track in ("vocal", "instrumental")),
)


def check_bundle_arrays(arrays: dict, where: str) -> None:
    """A bundle's arrays (name -> array) against BUNDLE_SPECS and AGREEMENTS; raises ArrayFileError naming `where`."""
    check_arrays(arrays, BUNDLE_SPECS, where)
    for needs, rule, problem in AGREEMENTS:
        if all(name in arrays for name in needs) and not rule(arrays):
            raise ArrayFileError(f"{where}: {problem(arrays)}")


# The settings a bundle carries (SongRequest.settings and what the app and the CLI add), each with the JSON types it
# may have: a bundle holding another type (`"lyrics": 5`) is refused on load, so nothing reading them later fails.
SETTINGS_TYPES = {
    "genres": (str,), "lyrics": (str,), "segments": (int, str, type(None)), "seed": (int, type(None)),
    "takes": (int,), "take": (int,), "sampling": (dict,), "rescale": (bool,), "reference": (dict, type(None)),
    "language": (str,), "mode": (str,), "precision": (str,), "continued_from": (dict,), "stems": (bool,),
}
LABEL = re.compile(r"\w+")  # a section's label, as the lyrics' tag gives it (yue.text.prompt.SECTION_PATTERN)


def check_settings(settings: dict, name: str) -> None:
    """Each known setting of a bundle has its type (a bool is no number), and mode and language are known ones;
    raises ArrayFileError naming the file and the setting."""
    for key, types in SETTINGS_TYPES.items():
        value = settings.get(key)
        if key in settings and (not isinstance(value, types) or (isinstance(value, bool) and bool not in types)):
            wanted = " or ".join({str: "text", int: "a whole number", dict: "an object", bool: "true or false",
                                  type(None): "null"}[kind] for kind in types)
            raise ArrayFileError(f"{name} is not {BUNDLE}: its setting {key!r} must be {wanted}; got "
                                 f"{checks.shown(value)} ({type(value).__name__})")
    for key, allowed in (("mode", MODES), ("language", LANGUAGES)):
        if settings.get(key) is not None and settings[key] not in allowed:
            raise ArrayFileError(f"{name}: its {key} {settings[key]!r} is not one of {', '.join(allowed)}")


def not_text(value, where: tuple = ()) -> str | None:
    """Where in a JSON value (keys included) a text holds a lone surrogate, which no response can carry (JSON may
    escape one as "\\udcff"), e.g. "settings.lyrics"; None when all of it is text."""
    if isinstance(value, str):
        return None if checks.is_text(value) else ".".join(where) or "text"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        shown = str(key).encode("utf-8", "backslashreplace").decode("utf-8")  # the path is shown: as text
        found = ".".join((*where, shown)) if shown != str(key) else not_text(item, (*where, shown))
        if found:
            return found
    return None


def write_bundle(path: str | Path, arrays: dict[str, np.ndarray], labels: tuple[str, ...],
                 settings: dict | None = None) -> Path:
    """One .npz bundle at `path` with the code arrays (by their BUNDLE_SPECS names), the section labels and the
    settings (JSON) that made them; written whole or not at all, its folder made when missing."""
    meta = {"version": BUNDLE_VERSION, "labels": list(labels), "settings": settings or {}}
    arrays = {**arrays, "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)  # as write_audio: the writer makes the folder it writes into
    with replacing(path) as temporary, open(temporary, "wb") as handle:  # whole or not at all
        np.savez_compressed(handle, **arrays)
    return path


def read_bundle(path: str | Path) -> tuple[dict[str, np.ndarray], dict, list[str]]:
    """The arrays (by name, "meta" taken out), settings and section labels of a bundle `write_bundle` wrote. Every
    array's header is checked before it is read (see arrays.py), then every field and what the fields agree on
    (BUNDLE_SPECS, AGREEMENTS, the settings' types); raises ArrayFileError naming the file and what is wrong."""
    name = Path(path).name
    required = tuple(key for key, spec in BUNDLE_SPECS.items() if not spec.optional)
    data = read_npz(path, BUNDLE_SPECS, required, BUNDLE)
    try:
        meta = json.loads(data.pop("meta").astype(np.uint8).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
        raise ArrayFileError(f"{name} is not {BUNDLE}: its settings are not readable JSON") from None
    if not isinstance(meta, dict):
        raise ArrayFileError(f"{name} is not {BUNDLE}: its metadata is a JSON {type(meta).__name__}, not the "
                             "object (version, labels, settings) this app writes")
    bad = not_text(meta)
    if bad:
        raise ArrayFileError(f"{name} is not {BUNDLE}: its {bad} holds a character that is not text (a lone "
                             "surrogate such as \\udcff)")
    if meta.get("version") != BUNDLE_VERSION:
        raise ArrayFileError(f"{name} is a bundle of version {meta.get('version')!r}; this app reads version "
                             f"{BUNDLE_VERSION}. Make the song again with this version.")
    settings, labels = meta.get("settings") or {}, meta.get("labels") or []
    if not (isinstance(settings, dict) and isinstance(labels, list)
            and all(isinstance(x, str) and LABEL.fullmatch(x) for x in labels)):
        raise ArrayFileError(f"{name} is not {BUNDLE}: its settings or section labels are malformed")
    check_settings(settings, name)
    check_bundle_arrays(data, name)
    return data, settings, labels
