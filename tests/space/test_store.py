"""space/store.py: private output folders deleted when old, each session's stop flag, the examples."""
import stat
from pathlib import Path

from space.store import OutputStore, Stops, load_examples, start_words


def test_output_store_keeps_young_folders(tmp_path):
    """Cleaning deletes only folders older than the age limit: a folder made a moment ago survives the next one."""
    store = OutputStore(tmp_path / "out", max_age_hours=1)
    first, second = store.new_folder(), store.new_folder()
    assert first.is_dir() and second.is_dir() and first != second
    assert stat.S_IMODE(second.stat().st_mode) == 0o700


def test_output_store_makes_an_existing_root_private(tmp_path):
    """A root that already exists with open permissions is narrowed to 0o700."""
    root = tmp_path / "out"
    root.mkdir(mode=0o755)
    OutputStore(root)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700


def test_stop_reaches_only_a_running_session(tmp_path):
    """A session without a run cannot be stopped; a running one gets its STOP file; after finish it is gone."""
    stops = Stops()
    assert stops.stop("a") is False
    flag = stops.start("a", tmp_path)
    assert stops.stop("a") is True and flag.exists() and flag == tmp_path / "STOP"
    stops.finish("a", flag)
    assert stops.stop("a") is False


def test_finishing_an_old_run_keeps_the_newer_runs_flag(tmp_path):
    """When a session starts a new run before the old one finishes, the old run's finish leaves the new flag."""
    stops = Stops()
    old = stops.start("a", tmp_path / "old")
    (tmp_path / "new").mkdir()
    new = stops.start("a", tmp_path / "new")
    stops.finish("a", old)
    assert stops.stop("a") is True and new.exists()



def test_load_examples_reads_genres_lyrics_and_language(tmp_path):
    """Each examples/<lang>-<name>/ folder gives (name, [genres, lyrics, checkpoint language])."""
    folder = tmp_path / "ja-night"
    folder.mkdir()
    (folder / "genre.txt").write_text("pop\n")
    (folder / "lyrics.txt").write_text("[verse]\nyoru\n\n")
    assert load_examples(tmp_path) == [("ja-night", ["pop", "[verse]\nyoru\n", "jp-kr"])]


def test_the_app_says_at_start_which_mode_checkpoints_and_device_it_runs():
    """Issue 25: the console never said it ran tiny offline. Tiny: the folder, noise, the cpu; full: the official
    checkpoints and the device (ZeroGPU's GPU inside each call)."""
    from yue.weights.registry import CODEC_REPO, STAGE2_REPO, stage1_repo

    tiny = start_words(Path("/x/tiny"), None, zero_gpu=False)
    assert tiny.startswith("TINY OFFLINE MODE: random checkpoints in /x/tiny (the output is noise)")
    assert tiny.endswith("on the cpu")
    full = start_words(None, "cpu", zero_gpu=False)
    assert full.startswith("full mode: ") and full.endswith("on cpu")
    assert all(repo in full for repo in (stage1_repo(), STAGE2_REPO, CODEC_REPO))
    assert start_words(None, None, zero_gpu=True).endswith("on ZeroGPU (a GPU inside each call)")
