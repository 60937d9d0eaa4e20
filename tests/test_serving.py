"""yue/serving.py without gradio and without models: checks, folders, stop flags, GPU sizing, the section loop."""
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from yue import gpu_time, serving
from yue.config import Limits, Sampling
from yue.song import Progress, Song, SongCodes, SongRequest
from yue.stage1 import Cancelled, Stage1Tokens

LYRICS = "[verse]\nsmall lights on the water\n\n[chorus]\nrise and shine\n"
SHARED = dict(language="en", sections=2, max_new_tokens=40, min_new_tokens=4, guidance_first=1.5, guidance_later=1.2,
              top_p=0.93, temperature=1.0, repetition_penalty=1.1, seed=42, random_seed=False, precision="auto",
              output_format="wav")


def codes(*section_frames: int, labels=None) -> SongCodes:
    frames = sum(section_frames)
    return SongCodes(Stage1Tokens(np.arange(frames), np.arange(frames) + 1000, tuple(section_frames),
                                  labels or tuple(f"s{i}" for i in range(len(section_frames)))))


def token_only_song(stage1_codes: SongCodes, done: int, total: int) -> Song:
    empty = np.zeros(0, dtype=np.float32)
    return Song(44100, empty, empty, empty, stage1_codes, 42, done, total, {"stage1_s": 1.0})


# -- folders and stop flags ----------------------------------------------------------------------------------------

def test_output_store_keeps_young_folders(tmp_path):
    """Cleaning deletes only folders older than the age limit: a folder made a moment ago survives the next one."""
    store = serving.OutputStore(tmp_path / "out", max_age_hours=1)
    first, second = store.new_folder(), store.new_folder()
    assert first.is_dir() and second.is_dir() and first != second
    assert stat.S_IMODE(second.stat().st_mode) == 0o700


def test_output_store_makes_an_existing_root_private(tmp_path):
    """A root that already exists with open permissions is narrowed to 0o700."""
    root = tmp_path / "out"
    root.mkdir(mode=0o755)
    serving.OutputStore(root)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700


def test_stop_reaches_only_a_running_session(tmp_path):
    """A session without a run cannot be stopped; a running one gets its STOP file; after finish it is gone."""
    stops = serving.Stops()
    assert stops.stop("a") is False
    flag = stops.start("a", tmp_path)
    assert stops.stop("a") is True and flag.exists() and flag == tmp_path / "STOP"
    stops.finish("a", flag)
    assert stops.stop("a") is False


def test_finishing_an_old_run_keeps_the_newer_runs_flag(tmp_path):
    """When a session starts a new run before the old one finishes, the old run's finish leaves the new flag."""
    stops = serving.Stops()
    old = stops.start("a", tmp_path / "old")
    (tmp_path / "new").mkdir()
    new = stops.start("a", tmp_path / "new")
    stops.finish("a", old)
    assert stops.stop("a") is True and new.exists()


# -- GPU sizing ------------------------------------------------------------------------------------------------------

def test_section_gpu_seconds_come_from_the_measured_speed_of_the_precision():
    """Booked time = gpu_time.section_seconds of the request's settings; "auto" books as bf16 (ZeroGPU's H200)."""
    request = SongRequest("pop", LYRICS, sampling=Sampling(max_new_tokens=3000))
    seconds = lambda precision: serving.section_gpu_seconds(serving.ModelChoice(precision=precision), request, "STOP")
    assert seconds("auto") == seconds("bf16") == gpu_time.section_seconds(request.sampling, "bf16")
    assert seconds("bf16") < seconds("nf4") < seconds("int8") == serving.GPU_MAX_SECONDS


def test_encode_gpu_seconds_is_a_constant():
    """Encoding books the same time whatever is uploaded (at most two tracks, length already limited)."""
    assert serving.encode_gpu_seconds(serving.ModelChoice(), ["a.wav", "b.wav"]) == serving.ENCODE_GPU_SECONDS


# -- checks ----------------------------------------------------------------------------------------------------------

def test_shared_settings_become_typed_values():
    """Endpoint values (floats from sliders) become a Sampling with int token counts, the section count and seed."""
    shared = serving.shared_settings({**SHARED, "max_new_tokens": 40.0, "sections": 2.0})
    assert shared.sampling == Sampling(top_p=0.93, temperature=1.0, repetition_penalty=1.1, guidance_first=1.5,
                                       guidance_later=1.2, max_new_tokens=40, min_new_tokens=4)
    assert (shared.sections, shared.seed, shared.language, shared.output_format) == (2, 42, "en", "wav")
    assert isinstance(shared.sampling.max_new_tokens, int) and isinstance(shared.sections, int)


def test_random_seed_leaves_the_seed_to_draw():
    """random_seed=True gives seed None (drawn later), even when the seed box is empty."""
    assert serving.shared_settings({**SHARED, "random_seed": True, "seed": None}).seed is None


@pytest.mark.parametrize("overrides, message", [
    (dict(language="fr"), "language must be one of en, zh, jp-kr; got 'fr'"),
    (dict(language=None), "language must be one of en, zh, jp-kr; got None"),
    (dict(output_format="ogg"), "output_format must be one of wav, flac, mp3; got 'ogg'"),
    (dict(top_p=""), r"Top-p \(top_p\) is empty: enter a number from 0.05 to 1"),
    (dict(top_p=0), r"Top-p \(top_p\) must be a number from 0.05 to 1; got 0"),
    (dict(temperature=float("inf")), r"Temperature \(temperature\) must be a number from 0.1 to 2; got inf"),
    (dict(repetition_penalty=float("nan")), r"\(repetition_penalty\) must be a number from 1 to 2; got nan"),
    (dict(max_new_tokens="forty"), r"\(max_new_tokens\) must be a whole number from 2 to 8000; got 'forty' \(str\)"),
    (dict(max_new_tokens=40.5), r"\(max_new_tokens\) .* got 40.5 \(fractions are not rounded\)"),
    (dict(seed=None), r"seed is empty: enter a whole number from 0 to 9007199254740991 \(2\*\*53 - 1\)"),
    (dict(seed=2**64), "seed must be a whole number from 0 to 9007199254740991 .*; got 18446744073709551616"),
    (dict(seed=1e30), "seed must be a whole number .*; got 1e\\+30"),
    (dict(seed=-1), "seed must be a whole number .*; got -1"),
    (dict(seed=1.5), "got 1.5 \\(fractions are not rounded\\)"),
    (dict(random_seed="yes"), "random_seed must be true or false; got 'yes'"),
    (dict(sections=None), "sections is empty: enter a whole number from 1 to 12"),
    (dict(sections="two"), "sections must be a whole number from 1 to 12; got 'two'"),
    (dict(sections=2.5), "sections must be a whole number from 1 to 12; got 2.5"),
    (dict(sections=True), "sections must be a whole number from 1 to 12; got True"),
])
def test_bad_shared_settings_say_what_to_change(overrides, message):
    """Each bad shared setting (None, text, NaN, inf, fractions, out of range) raises a ValueError naming the field
    and what is allowed; nothing is rounded or wrapped."""
    with pytest.raises(ValueError, match=message):
        serving.shared_settings({**SHARED, **overrides})


def test_the_largest_seed_is_used_as_given():
    """The top of the documented seed range is accepted unchanged."""
    from yue.checks import SEED_MAX

    assert serving.shared_settings({**SHARED, "seed": SEED_MAX}).seed == SEED_MAX == 2**53 - 1


def test_lyrics_job_checks_the_request_before_any_model_is_loaded(tmp_path):
    """Empty lyrics, a bad genre, a control token's name or too many sections are refused by the job itself;
    get_pipeline is never called."""

    def never(choice):
        raise AssertionError("a model was loaded")

    service = serving.Service(never, serving.OutputStore(tmp_path), Limits())
    shared = serving.shared_settings(SHARED)
    for genres, lyrics, message in (("pop", "", "Lyrics are empty"), ("", LYRICS, "Genre tags are empty"),
                                    ("pop", LYRICS + "<stage_1>\n", "Lyrics hold '<stage_1>' on line 6"),
                                    ("pop", "[verse]\nla\n", "segments is 2 but the lyrics have only 1")):
        with pytest.raises(ValueError, match=message):
            service.lyrics_job(genres, lyrics, shared)


def test_check_upload_refuses_long_or_unreadable_files(tmp_path):
    """No upload passes as None; an upload longer than the limit, not audio at all, or with NaN/inf samples is
    refused with a message before any GPU work."""
    import soundfile

    assert serving.check_upload(None, "reference track", Limits()) is None
    short, long, junk = tmp_path / "short.wav", tmp_path / "long.wav", tmp_path / "junk.wav"
    soundfile.write(short, np.zeros(8000, dtype=np.float32), 8000)
    soundfile.write(long, np.zeros(15 * 8000, dtype=np.float32), 8000)
    junk.write_bytes(b"not audio")
    limits = Limits(max_reference_seconds=12.0)
    assert serving.check_upload(str(short), "reference track", limits) == str(short)
    with pytest.raises(ValueError, match="The vocal stem is 15 s long; the limit is 12 s"):
        serving.check_upload(str(long), "vocal stem", limits)
    with pytest.raises(ValueError, match="not an audio file this app can read"):
        serving.check_upload(str(junk), "vocal stem", limits)
    nan = tmp_path / "nan.wav"
    soundfile.write(nan, np.where(np.arange(8000) == 5, np.inf, 0.1), 8000, subtype="FLOAT")
    with pytest.raises(ValueError, match="nan.wav holds 1 NaN or infinite samples"):
        serving.check_upload(str(nan), "vocal stem", limits)


def test_load_bundle_names_a_file_that_is_not_a_bundle(tmp_path):
    """A file that is not an .npz bundle gives a ValueError with its name; a saved bundle loads back."""
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.npz is not a song bundle"):
        serving.load_bundle(str(junk))
    song = codes(3, 2)
    loaded, settings = serving.load_bundle(str(song.save(tmp_path / "song.npz", {"seed": 7})))
    assert loaded.stage1.section_frames == (3, 2) and settings == {"seed": 7}


def test_choose_start_end_section_and_time():
    """'end' keeps the whole song, 'section' the first N sections, 'time' the frames before the cut (50 a second)."""
    song = codes(100, 50)
    assert serving.choose_start(song, "end", None, None) is song
    assert serving.choose_start(song, "section", 1, None).stage1.section_frames == (100,)
    assert serving.choose_start(song, "time", None, 2.5).stage1.section_frames == (100, 25)


@pytest.mark.parametrize("continue_from, keep, cut, message", [
    ("section", 0, None, "Keep at least 1 section"),
    ("section", "", None, r"sections to keep \(keep_sections\) is empty"),
    ("section", 1.5, None, "got 1.5 \\(fractions are not rounded\\)"),
    ("time", None, float("nan"), r"cut time \(cut_seconds\) must be a number; got nan"),
    ("time", None, "1", r"cut time \(cut_seconds\) must be a number; got '1' \(str\)"),
    ("time", None, 0, "between 0 and 3.0 s"),
    ("time", None, 3.5, "between 0 and 3.0 s"),
    ("middle", None, None, "continue_from must be one of end, section, time"),
])
def test_choose_start_refuses_what_cannot_be_kept(continue_from, keep, cut, message):
    """Keeping no section, an empty count, a cut outside the song or an unknown mode raise a clear ValueError."""
    with pytest.raises(ValueError, match=message):
        serving.choose_start(codes(100, 50), continue_from, keep, cut)


def test_stems_of_different_lengths_are_refused_in_seconds_before_encoding(tmp_path):
    """Continue from stems, or a reference pair: lengths that differ by more than a frame are refused with both
    lengths in seconds and what to do, before anything is encoded (`encode` is never called)."""
    import soundfile

    for name, seconds in (("v.wav", 2.0), ("i.wav", 1.5), ("i2.wav", 2.01)):
        soundfile.write(tmp_path / name, 0.1 * np.ones(int(8000 * seconds), dtype=np.float32), 8000)
    service = serving.Service(lambda choice: None, serving.OutputStore(tmp_path / "out"), Limits())
    shared = serving.shared_settings(SHARED)
    never = lambda *a: pytest.fail("encoded")
    message = r"The vocal stem is 2.00 s long and the instrumental stem 1.50 s: .* Trim the longer one to 1.50 s"
    with pytest.raises(ValueError, match=message):
        service.continue_job(None, str(tmp_path / "v.wav"), str(tmp_path / "i.wav"), "end", 1, 0, "pop", LYRICS, None,
                             shared, never)
    with pytest.raises(ValueError, match="The reference vocal is 2.00 s long and the reference instrumental 1.50 s"):
        service.style_job(None, str(tmp_path / "v.wav"), str(tmp_path / "i.wav"), 0, 30, "pop", LYRICS, shared, never)
    # within a frame (20 ms) the pair is accepted
    service.style_job(None, str(tmp_path / "v.wav"), str(tmp_path / "i2.wav"), 0, 30, "pop", LYRICS, shared, never)


def test_stems_codes_is_one_verse_as_long_as_the_shorter_stem():
    """Uploaded stems of different lengths become one 'verse' section cut to the shorter one."""
    song = serving.stems_codes(np.arange(10), np.arange(7))
    assert song.stage1.section_frames == (7,) and song.stage1.labels == ("verse",)
    np.testing.assert_array_equal(song.stage1.vocal, np.arange(7))


def test_prefill_lyrics_adds_a_new_section_only_when_all_are_kept():
    """The song's sections come back normalised; an empty [verse] follows only when no section is left to redo."""
    assert serving.prefill_lyrics(LYRICS, 1) == "[verse]\nsmall lights on the water\n\n[chorus]\nrise and shine\n\n"
    assert serving.prefill_lyrics(LYRICS, 2).endswith("[chorus]\nrise and shine\n\n[verse]\n")
    assert serving.prefill_lyrics("", 0) == "[verse]\n"


# -- results ---------------------------------------------------------------------------------------------------------

def test_write_song_token_only_writes_just_the_bundle(tmp_path):
    """Without audio, only the bundle is written, named 'done of total', with sections_done in its settings."""
    files = serving.write_song(tmp_path, token_only_song(codes(5), 1, 3), 1, 3, "wav", {"seed": 42})
    assert files[:3] == [None, None, None] and files[3].endswith("song-1of3.npz")
    assert SongCodes.load(files[3])[1] == {"seed": 42, "sections_done": 1}


def test_write_song_writes_three_tracks_in_the_chosen_format(tmp_path):
    """With audio: mix, vocal and instrumental files in the requested format, then the bundle."""
    audio = np.zeros(4410, dtype=np.float32)
    song = Song(44100, audio, audio, audio, codes(5), 42, 2, 2)
    files = serving.write_song(tmp_path, song, 2, 2, "flac", {})
    assert [os.path.basename(f) for f in files] == ["mix-2of2.flac", "vocal-2of2.flac", "instrumental-2of2.flac",
                                                    "song-2of2.npz"]


def test_summary_in_words():
    """A stop before any section says nothing is kept; a token-only song says where the result is."""
    assert serving.summary(None, 0, 2, 1.0, {}, True).startswith("Stopped before the first section")
    assert serving.summary(None, 0, 2, 1.0, {}, False) == "Nothing was made."
    text = serving.summary(token_only_song(codes(50), 1, 2), 1, 2, 3.0, {"stage1_s": 2.0}, False)
    assert text.startswith("Done: 1 of 2 sections, 1.0 s of audio in 3.0 s (stage 1 2.0 s).\nSeed 42.")
    assert "token-only" in text


def test_load_examples_reads_genres_lyrics_and_language(tmp_path):
    """Each examples/<lang>-<name>/ folder gives (name, [genres, lyrics, checkpoint language])."""
    folder = tmp_path / "ja-night"
    folder.mkdir()
    (folder / "genre.txt").write_text("pop\n")
    (folder / "lyrics.txt").write_text("[verse]\nyoru\n\n")
    assert serving.load_examples(tmp_path) == [("ja-night", ["pop", "[verse]\nyoru\n", "jp-kr"])]


# -- the section loop --------------------------------------------------------------------------------------------------

class FakePipeline:
    """Checks like the pipeline (one section per lyric tag) and makes each section of `frames` token-only frames."""

    def __init__(self, frames: int = 4, stop_after: int | None = None):
        self.frames, self.stop_after, self.calls = frames, stop_after, []

    def check(self, request):
        return ["verse", "chorus"], []

    def stream(self, request, on_progress, cancel):
        self.calls.append(request.segments)
        if self.stop_after is not None and len(self.calls) > self.stop_after:
            raise Cancelled("stopped")
        on_progress(Progress("stage1", request.segments - 1, request.segments, 1, 1))
        done = request.segments
        yield token_only_song(codes(*[self.frames] * done), done, done)


def run(tmp_path, pipeline: FakePipeline) -> list:
    service = serving.Service(lambda choice: pipeline, serving.OutputStore(tmp_path), Limits())
    job = service.lyrics_job("pop", LYRICS, serving.shared_settings(SHARED))
    return list(service.run(job, "wav", "session", service.run_section))


def test_run_makes_one_call_per_section_and_writes_after_each(tmp_path):
    """Each section is its own call with segments = sections so far; files and the final summary follow."""
    pipeline = FakePipeline()
    updates = run(tmp_path, pipeline)
    assert pipeline.calls == [1, 2]
    assert updates[0] == serving.Update("Loading the models…")
    assert [u.text for u in updates if u.files] == ["Section 1 of 2 done.", "Section 2 of 2 done.",
                                                    updates[-1].text]
    assert updates[-1].text.startswith("Done: 2 of 2 sections") and updates[-1].files[3].endswith("song-2of2.npz")
    assert all(u.seed == 42 for u in updates[1:])


def test_run_stopped_keeps_the_sections_made(tmp_path):
    """A run stopped in section 2 ends with the files of section 1 and a 'Stopped: 1 of 2' summary."""
    updates = run(tmp_path, FakePipeline(stop_after=1))
    assert updates[-1].text.startswith("Stopped: 1 of 2 sections") and updates[-1].files[3].endswith("song-1of2.npz")


def test_run_stopped_before_any_section_has_no_files(tmp_path):
    """Stopped in the first section: no files to show, and the summary says nothing is kept."""
    updates = run(tmp_path, FakePipeline(stop_after=0))
    assert updates[-1].files is None and updates[-1].text.startswith("Stopped before the first section")


def test_section_events_raise_the_workers_error_on_the_callers_thread(tmp_path):
    """An error inside the pipeline's stream reaches whoever iterates the events, as the same exception."""

    class Broken:
        def stream(self, request, on_progress, cancel):
            raise RuntimeError("out of memory")
            yield

    with pytest.raises(RuntimeError, match="out of memory"):
        list(serving.section_events(Broken(), None, str(tmp_path / "STOP")))


def test_serving_does_not_import_gradio_or_spaces(tmp_path):
    """Only app.py imports gradio and spaces: importing yue.serving loads neither and writes no file."""
    import subprocess
    import sys

    env = {**os.environ, "TMPDIR": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    code = "import sys, yue.serving; assert not {'gradio', 'spaces'} & set(sys.modules); print('ok')"
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "ok", result.stderr
    assert list(tmp_path.iterdir()) == []
