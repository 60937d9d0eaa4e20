"""The files `python -m yue` writes: a song's codes, audio and settings, the pieces heard while it is made (--rows)
and single arrays, each whole or not at all, and never over one of the run's own inputs."""
from __future__ import annotations

import json
from pathlib import Path

from .inputs import SONG_FILES

ROW_FOLDER = "rows"  # --rows: each take's pieces of audio heard while it is made


def write_row(folders: list[Path], piece) -> None:
    """A piece of a take's mix heard while it is made (`--rows`), named by its first frame so names sort in order."""
    from ..audio import write_audio

    write_audio(folders[piece.take] / ROW_FOLDER / f"{piece.start:07d}.wav", piece.mix, piece.sample_rate)


def never_over_inputs(folder: Path, fmt: str, inputs) -> None:
    """Refuse an --out folder where a file `generate` writes is one of its inputs (even with --overwrite)."""
    names = SONG_FILES + tuple(f"{track}.{fmt}" for track in ("mix", "vocal", "instrumental"))
    for given in inputs:
        if given is not None and Path(given).is_file():
            for name in names:
                if (folder / name).exists() and (folder / name).samefile(given):
                    raise ValueError(f"--out {folder} would replace {given}, an input of this run; choose another "
                                     "folder")


def save_npy(path: Path, array) -> None:
    """np.save to exactly `path` (np.save itself adds .npy to other names), whole or not at all."""
    import numpy as np

    from ..files import replacing

    with replacing(path) as temporary, open(temporary, "wb") as handle:
        np.save(handle, array)


def write_text(path: Path, text: str) -> None:
    from ..files import replacing

    with replacing(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_song(folder: Path, song, settings: dict, fmt: str) -> None:
    """The codes (stage1_*.npy, stage2_*.npy, song.npz), the audio and settings.json of one song in `folder`. Each
    file is written whole or not at all; after a write error none of this song's new files is left behind."""
    folder.mkdir(parents=True, exist_ok=True)
    codes, written = song.codes, []
    arrays = (("stage1_vocal", codes.stage1.vocal[None]), ("stage1_instrumental", codes.stage1.instrumental[None]),
              ("stage2_vocal", codes.vocal), ("stage2_instrumental", codes.instrumental))
    try:
        for name, array in arrays:
            save_npy(folder / f"{name}.npy", array)
            written.append(folder / f"{name}.npy")
        written.append(codes.save(folder / "song.npz", settings))
        if song.mix.size:
            from ..audio import write_audio

            for name, samples in (("mix", song.mix), ("vocal", song.vocal), ("instrumental", song.instrumental)):
                written.append(write_audio(folder / f"{name}.{fmt}", samples, song.sample_rate))
        write_text(folder / "settings.json", json.dumps({**settings, "timings": song.timings}, indent=2))
    except OSError:
        for path in written:
            path.unlink(missing_ok=True)
        raise
