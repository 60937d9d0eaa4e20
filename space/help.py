"""The page's help beside each setting, in a musician's words: what it changes in the song, and the official value
(read from `yue.config.Sampling`, never written twice). The precision's memory, time and GPU booking on this Space's
card come from space/gpu_table.py, the one table the docs show too. Nothing here imports gradio."""
from __future__ import annotations

from . import gpu_table, gpu_time
from .results import TOKENS_PER_SECOND
from yue import checks
from yue.config import Sampling

OFFICIAL = Sampling()


HELP = {  # {official}: the official value; {seconds}: it in seconds of music; {per_second}: tokens a second
    "language": "the model for the lyrics' language: en (English), zh (Mandarin, Cantonese), jp-kr (Japanese, "
                "Korean)",
    "max_new_tokens": "how long each section may get: {per_second} tokens = 1 s of music (official {official} = "
                      "{seconds:g} s); a section may end sooner on its own",
    "min_new_tokens": "the shortest a section may be: {per_second} tokens = 1 s of music (official {official} = "
                      "{seconds:g} s)",
    "guidance_first": "how closely the first section follows the genre tags and lyrics: higher is stricter, 1.0 is "
                      "off (official {official:g})",
    "guidance_later": "the same for every later section, which also follows the song so far (official {official:g})",
    "top_p": "how many of the likely next sounds the model chooses from: lower is safer and plainer, higher more "
             "varied (official {official:g})",
    "temperature": "how adventurous the model is: below 1 safer and more repetitive, above 1 wilder and less in "
                   "tune (official {official:g})",
    "repetition_penalty": "holds the model back from repeating the same sounds: higher gives more variety, too high "
                          "sounds erratic (official {official:g})",
    "seed": "the same seed and settings make the same song again; a whole number from {seed_range}",
    "takes": "versions made at once (take 2 has the next seed).",
}


def setting_help(name: str) -> str:
    """The help line (Gradio's `info=`) of the shared setting `name` (an endpoint's parameter name)."""
    official = getattr(OFFICIAL, name, 0)
    return HELP[name].format(official=official, seconds=official / TOKENS_PER_SECOND, per_second=TOKENS_PER_SECOND,
                             seed_range=checks.SEED_RANGE)


def listen_help(card: gpu_time.Card) -> str:
    """The listening switch's help line: what it does, and the GPU time it adds to a 30 s section on `card`."""
    extra = gpu_time.listen_seconds(OFFICIAL) * card.slowdown
    return (f"plays each part of every take as soon as it is made; the song then takes longer on the GPU and uses "
            f"more of your GPU time (about {extra:.0f} s more a 30 s section here)")


def card_key(card: gpu_time.Card) -> str:
    """The gpu_time.CARDS key of `card`."""
    return next(key for key, known in gpu_time.CARDS.items() if known is card)


def precision_help(card: gpu_time.Card) -> str:
    """The precision's help line: each precision's GPU memory and time for a 30 s section on `card` (this
    Space's), from the docs' table (space/gpu_table.py)."""
    costs = "; ".join(f"{precision.strip('`')} {memory}, {seconds}" for precision, memory, seconds, *_ in
                      gpu_table.rows(card))
    return (f"the model's number format: less GPU memory can be slower and a little less faithful. auto is bf16 on "
            f"a GPU. Memory and time of a 30 s section here: {costs} (the table below)")


def precision_table(card: gpu_time.Card) -> str:
    """The docs' booking table of `card` (Markdown): memory, time and GPU seconds booked per 30 s section."""
    return gpu_table.markdown(card_key(card))
