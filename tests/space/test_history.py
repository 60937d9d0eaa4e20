"""space/history.py: what the browser keeps of each song (its files, seed, settings, tab), newest first, once each,
at most MAX_ENTRIES; an entry whose files are gone, or that names a file outside the app's outputs, shows no files."""
from space import history

from .helpers import LYRICS, codes


def made(folder, seed: int = 42, takes: int = 1) -> list[dict]:
    """A run's takes as the app records them: a bundle with the run's settings and a mix per take."""
    rows = []
    for take in range(1, takes + 1):
        settings = {"genres": "pop piano", "lyrics": LYRICS, "segments": 3, "language": "zh", "precision": "int8",
                    "sampling": {"max_new_tokens": 300, "top_p": 0.9, "temperature": 1.0},
                    "continued_from": {"take": 1, "seed": 7, "sections": 1}, "seed": seed + take - 1}
        bundle = str(codes(4, 4).save(folder / f"take{take}-{seed}.npz", settings))
        mix = folder / f"take{take}-{seed}.wav"
        mix.write_bytes(b"RIFF")
        rows.append({"take": take, "seed": seed + take - 1, "mix": str(mix), "vocal": None, "instrumental": None,
                     "bundle": bundle})
    return rows


def test_an_entry_holds_the_files_seed_settings_and_tab(tmp_path):
    """A continuation of 2 new sections (3 in all, 1 kept) with 2 takes: its settings come back as the page's."""
    entry = history.new_entry(made(tmp_path, 42, takes=2), "Done: 3 of 3 sections, 6.0 s\nSeed 42.", "continue", 0)
    assert entry["tab"] == "continue" and entry["summary"] == "Done: 3 of 3 sections, 6.0 s"
    assert entry["settings"] == {"language": "zh", "sections": 2, "max_new_tokens": 300, "top_p": 0.9,
                                 "temperature": 1.0, "seed": 42, "precision": "int8", "takes": 2}
    assert (entry["genres"], entry["lyrics"]) == ("pop piano", LYRICS)
    assert [take["seed"] for take in entry["takes"]] == [42, 43]
    assert "Continue a song** · seed 42 · Done: 3 of 3 sections" in history.title(entry)


def test_errors_and_empty_stops_make_no_entry(tmp_path):
    assert history.new_entry(made(tmp_path), "✗ Lyrics are empty.", "lyrics") is None
    assert history.new_entry(made(tmp_path), "Stopped before the first section was finished; nothing to keep.",
                             "lyrics") is None
    assert history.new_entry(None, "Done: 1 of 1 sections", "lyrics") is None
    assert history.new_entry(made(tmp_path), "Stopped: 1 of 2 sections, 3.0 s", "style")["tab"] == "style"


def test_newest_first_once_each_and_bounded(tmp_path):
    entries = []
    for seed in range(history.MAX_ENTRIES + 3):
        entries = history.remember(entries, history.new_entry(made(tmp_path, seed), "Done: 1 of 1", "lyrics"))
    assert len(entries) == history.MAX_ENTRIES
    assert [entry["settings"]["seed"] for entry in entries[:2]] == [history.MAX_ENTRIES + 2, history.MAX_ENTRIES + 1]
    assert history.remember(entries, entries[3]) == entries  # the same song again: not twice
    assert history.remember(["junk", None], None) == []  # what the browser sent that is not an entry is dropped


def test_an_entry_whose_files_are_gone_or_elsewhere_shows_none(tmp_path):
    """Files present under the outputs root: shown; one deleted (the 6 h rule), or a path outside the root that a
    changed browser copy could send: none, and the page says so calmly."""
    root = tmp_path / "outputs"
    root.mkdir()
    entry = history.new_entry(made(root), "Done: 1 of 1", "lyrics")
    assert history.files_of(entry, root) == entry["takes"]
    assert history.files_of(entry, tmp_path / "elsewhere") is None
    outside = {**entry, "takes": [{**entry["takes"][0], "mix": "/etc/hostname"}]}
    assert history.files_of(outside, root) is None
    (root / "take1-42.wav").unlink()
    assert history.files_of(entry, root) is None
