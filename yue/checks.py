"""Raw values (API JSON, CLI flags, Python callers) -> typed values, or a ValueError that names the field and what
it accepts. One module, so the app, the CLI and the pipeline say the same thing about the same value.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

# Seeds are whole numbers 0..SEED_MAX. 2**53 - 1 is the largest whole number a browser's number field (a JavaScript
# double) holds exactly, so a seed typed in the app, sent by gradio_client or given to the CLI is the same seed
# everywhere; section seeds (seed + 7919 * index, stage1.section_seed) then stay far below torch's 2**63 and are
# never wrapped: every accepted seed is used as given.
SEED_MAX = 2**53 - 1
SEED_RANGE = f"0 to {SEED_MAX} (2**53 - 1)"


def shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _span(lo, hi, whole: bool) -> str:
    show = (lambda x: str(int(x))) if whole else (lambda x: f"{x:g}")
    if lo is not None and hi is not None:
        return f" from {show(lo)} to {show(hi)}"
    return f" >= {show(lo)}" if lo is not None else f" <= {show(hi)}" if hi is not None else ""


def number(value, name: str, lo: float | None = None, hi: float | None = None, whole: bool = False,
           span: str | None = None):
    """`value` as an int (`whole`) or float within [lo, hi]; refuses None, text, bools, NaN, inf and fractions of
    whole numbers (never rounded) with a message naming `name` and the range (`span` words it differently)."""
    wanted = ("a whole number" if whole else "a number") + (span or _span(lo, hi, whole))
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"{name} is empty: enter {wanted}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {wanted}; got {shown(value)} ({type(value).__name__})")
    if isinstance(value, numbers.Integral):
        result = int(value)
    elif not math.isfinite(value):
        raise ValueError(f"{name} must be {wanted}; got {shown(value)}")
    elif whole and not float(value).is_integer():
        raise ValueError(f"{name} must be {wanted}; got {shown(value)} (fractions are not rounded)")
    else:
        result = int(value) if whole else float(value)
    if (lo is not None and result < lo) or (hi is not None and result > hi):
        raise ValueError(f"{name} must be {wanted}; got {shown(value)}")
    return result


def seed(value, name: str = "seed") -> int:
    """A seed in 0..SEED_MAX, used exactly as given."""
    return number(value, name, 0, SEED_MAX, whole=True, span=f" from {SEED_RANGE}")


def flag(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false; got {shown(value)}")
    return value


def choice(value, name: str, allowed) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}; got {shown(value)}")
    return value


def text(value, name: str) -> str:
    """Text fields: None counts as empty text (the content checks then say what to write)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text; got {shown(value)} ({type(value).__name__})")
    return value


def is_text(value: str) -> bool:
    """Whether `value` can be sent as UTF-8: no lone surrogate (Python's stand-in for a byte that was not UTF-8, or
    JSON's escaped "\\udcff"), which a response encoder refuses."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def same_length(first: tuple[str, float], second: tuple[str, float], tolerance_s: float = 0.02) -> None:
    """Two stems of one recording, (name, seconds) each: refused when their lengths differ by more than one codec
    frame (20 ms), in seconds and before any encoding, rather than cut to the shorter one silently."""
    (a, a_s), (b, b_s) = first, second
    if abs(a_s - b_s) > tolerance_s:
        raise ValueError(f"The {a} is {a_s:.2f} s long and the {b} {b_s:.2f} s: stems of one recording have the same "
                         f"length. Trim the longer one to {min(a_s, b_s):.2f} s, or export both from the same "
                         "separation.")


@dataclass(frozen=True)
class Slider:
    """A numeric setting the app shows as a slider: its label and range, shared by the widget and the check."""

    label: str
    lo: float
    hi: float
    step: float
    whole: bool = False

    def read(self, value, parameter: str):
        return number(value, f"{self.label} ({parameter})", self.lo, self.hi, self.whole)


# The app's ranges for the shared sampling settings (wide enough for every useful value; Sampling.check holds the
# hard limits that also bind the CLI and the Python API).
SLIDERS = {
    "max_new_tokens": Slider("Max tokens per section", 2, 8000, 2, whole=True),
    "min_new_tokens": Slider("Min tokens per section", 0, 2000, 2, whole=True),
    "guidance_first": Slider("Guidance, first section", 1.0, 3.0, 0.05),
    "guidance_later": Slider("Guidance, later sections", 1.0, 3.0, 0.05),
    "top_p": Slider("Top-p", 0.05, 1.0, 0.01),
    "temperature": Slider("Temperature", 0.1, 2.0, 0.05),
    "repetition_penalty": Slider("Repetition penalty", 1.0, 2.0, 0.01),
}
