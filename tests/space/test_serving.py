"""space/serving.py without gradio and without models: GPU sizing, the section loop of every take, its calls and
their deadlines."""
import os
import pickle
import re
import time
from dataclasses import replace

import numpy as np
import pytest

from space import gpu_time, serving
from space.handover import MESSAGE_BYTES, Call, RunFiles, SectionDone
from space.jobs import shared_settings
from space.song_progress import SongState
from space.store import OutputStore
from yue.config import Limits
from yue.song import Progress, SongCodes
from yue.lm.stage1 import Cancelled

from tests import ROOT
from .helpers import LYRICS, SMALL, codes, token_only_song

# -- GPU sizing ------------------------------------------------------------------------------------------------------

def test_section_gpu_seconds_ask_spaces_for_the_calls_booking_divided_by_its_factor(monkeypatch):
    """The duration given to spaces.GPU is the seconds the call booked (`Call.booked`, decided by the run) divided
    by spaces' duration_factor, which spaces multiplies back."""
    call = Call("folder", 0, 45)
    assert serving.section_gpu_seconds(serving.ModelChoice(), call) == 45
    monkeypatch.setattr(gpu_time, "duration_factor", lambda: 1.5)
    assert serving.section_gpu_seconds(serving.ModelChoice(), call) == 30


def test_encode_gpu_seconds_is_a_constant():
    """Encoding books the same time whatever is uploaded (at most two tracks, length already limited)."""
    assert serving.encode_gpu_seconds(serving.ModelChoice(), ["a.wav", "b.wav"]) == serving.ENCODE_GPU_SECONDS


# -- the section loop --------------------------------------------------------------------------------------------------

class FakePipeline:
    """Checks like the pipeline (one section per lyric tag) and makes each section of `frames` token-only frames
    (`frames + t` for take t), with seed 42 + t."""

    def __init__(self, frames: int = 4, stop_after: int | None = None):
        self.frames, self.stop_after, self.calls, self.previous = frames, stop_after, [], []

    def check(self, request):
        return ["verse", "chorus"], []

    def stream_takes(self, request, on_progress, cancel, previous=None, render_states=None, **deadline):
        self.calls.append(request.segments)
        self.previous.append(previous)
        if self.stop_after is not None and len(self.calls) > self.stop_after:
            raise Cancelled("stopped")
        on_progress(Progress("stage1", request.segments - 1, request.segments, 1, 1))
        done = request.segments
        yield [token_only_song(codes(*[self.frames + take] * done), done, done, 42 + take)
               for take in range(request.takes)]


def run(tmp_path, pipeline: FakePipeline, **shared) -> list:
    service = serving.Service(lambda choice: pipeline, OutputStore(tmp_path), Limits())
    job = service.lyrics_job("pop", LYRICS, shared_settings({**SMALL, **shared}))
    return list(service.run(job, "wav", "session", service.run_section))


def test_run_makes_one_call_per_section_and_writes_after_each(tmp_path):
    """Each section is its own call with segments = sections so far; files and the final summary follow."""
    pipeline = FakePipeline()
    updates = run(tmp_path, pipeline)
    assert pipeline.calls == [1, 2]
    assert updates[0] == serving.Update("Loading the models…", song=SongState(0.0, None))
    assert [u.text for u in updates if u.files] == ["Section 1 of 2 done.", "Section 2 of 2 done.",
                                                    updates[-1].text]
    assert updates[-1].text.startswith("Done: 2 of 2 sections") and updates[-1].files[3].endswith("song-2of2.npz")
    assert all(u.seed == 42 for u in updates[1:])


def test_progress_says_time_elapsed_and_the_audio_made_so_far_apart(tmp_path):
    """The progress text of a run names its step, the time left in it (estimating at first), the new sections done,
    the song's audio so far (none before the first section, 4 frames = 0.1 s after it), the time elapsed, and the
    whole song's share done and time left (estimating in the first seconds)."""
    progress = [u.text for u in run(tmp_path, FakePipeline()) if u.text.startswith("Section ") and "/" in u.text]
    assert len(progress) == 2
    first, second = (text.splitlines() for text in progress)
    assert first[0] == "Section 1/2: composing, 0.0 of at most 0.0 s of music, estimating the time left…"
    whole = r"\d+ s elapsed, estimating the time left for the song"
    assert re.fullmatch(r"0 of 2 new sections done \(([1-4]\d|[1-9])%\), no audio yet; " + whole, first[1])
    assert re.fullmatch(r"1 of 2 new sections done \(([5-9]\d)%\), the song so far is 0\.1 s of audio; " + whole,
                        second[1])


def test_the_summarys_time_runs_from_the_start_given_and_the_details_keep_the_stages(tmp_path):
    """A run started 100 s before it was handed to the service (an endpoint's first line, before a reference is
    read and the models load) counts those 100 s in its summary; the progress and the end carry the details."""
    pipeline = FakePipeline()
    service = serving.Service(lambda choice: pipeline, OutputStore(tmp_path), Limits())
    job = service.lyrics_job("pop", LYRICS, shared_settings(SMALL))
    updates = list(service.run(job, "wav", "session", service.run_section, time.perf_counter() - 100))
    assert re.match(r"Done: 2 of 2 sections, [\d.]+ s of audio in 1\d\d\.\d s", updates[-1].text)
    assert "stage-1 tokens at most per section" in updates[-1].details
    assert any((u.details or "").startswith("Section 1/2: stage1 1/1 tokens") for u in updates)


def test_a_kept_takes_run_shows_that_takes_seed(tmp_path):
    """Keep take 2 (seed 43) of a one-section run of 2 takes and go on: the run's seed shown is 43, the kept
    song's, not the seed setting's 42 (take 1's)."""
    pipeline = FakePipeline()
    service = serving.Service(lambda choice: pipeline, OutputStore(tmp_path), Limits())
    shared = shared_settings({**SMALL, "sections": 1, "takes": 2})
    made = [take.as_dict() for take in list(service.run(service.lyrics_job("pop", LYRICS, shared), "wav", "s",
                                                        service.run_section))[-1].takes]
    assert [take["seed"] for take in made] == [42, 43]
    kept = list(service.run(service.keep_job(made, 2, shared, None), "wav", "s", service.run_section))
    assert kept[-1].seed == 43 and "Went on from take 2 (seed 43)" in kept[-1].text


def test_run_of_takes_goes_on_from_each_takes_own_song_and_writes_every_take(tmp_path):
    """takes=2: section 2's call continues take 1 and take 2 from their own section-1 songs; every update after a
    section holds both takes' files (take<t>- names), and each bundle records its take and its own seed."""
    pipeline = FakePipeline()
    updates = run(tmp_path, pipeline, takes=2)
    first, second = pipeline.previous
    assert first is None and [song.frames for song in second] == [4, 5]  # take t's section 1 has 4 + t - 1 frames
    final = updates[-1]
    assert [take.take for take in final.takes] == [1, 2] and [take.seed for take in final.takes] == [42, 43]
    assert [os.path.basename(take.bundle) for take in final.takes] == ["take1-song-2of2.npz", "take2-song-2of2.npz"]
    settings = [SongCodes.load(take.bundle)[1] for take in final.takes]
    assert [(s["take"], s["seed"], s["takes"]) for s in settings] == [(1, 42, 2), (2, 43, 2)]
    assert final.files == final.takes[0].files and "2 takes, seeds 42 to 43" in final.text


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
        def stream_takes(self, request, on_progress, cancel, previous=None, render_states=None, **deadline):
            raise RuntimeError("out of memory")
            yield

    with pytest.raises(RuntimeError, match="out of memory"):
        list(serving.section_events(Broken(), None, str(tmp_path / "STOP")))


def test_serving_does_not_import_gradio_or_spaces(tmp_path):
    """Only app.py imports gradio and spaces: importing space.serving loads neither and writes no file."""
    import subprocess
    import sys

    env = {**os.environ, "TMPDIR": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    code = "import sys, space.serving; assert not {'gradio', 'spaces'} & set(sys.modules); print('ok')"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "ok", result.stderr
    assert list(tmp_path.iterdir()) == []


class Forked:
    """A GPU call as ZeroGPU makes one, without the process: the arguments and every yielded value pickled and
    unpickled (their sizes kept), and every take's song and render state read back from the run's folder after each
    section."""

    def __init__(self, service):
        self.service, self.sizes, self.songs, self.states = service, [], [], []  # sizes: each call's, in bytes

    @property
    def calls(self) -> int:
        return len(self.sizes)

    def __call__(self, *args):
        data = pickle.dumps(args)
        self.sizes.append([len(data)])
        for event in self.service.run_section(*pickle.loads(data)):
            data = pickle.dumps(event)
            self.sizes[-1].append(len(data))
            event = pickle.loads(data)
            if isinstance(event, SectionDone):
                files = RunFiles(args[1].folder)
                takes = files.request().takes
                self.songs.append(files.songs(event.section, takes))
                self.states.append(files.states(event.section, takes)[1])
            yield event


def test_a_run_on_the_tiny_pipeline_decodes_only_new_frames_per_section(tmp_path, tiny_dir):
    """Three sections of 300 frames (one whole stage-2 row each), 2 takes, a call a section (off ZeroGPU), each
    going on from its run's folder: each resumes each take's audio from its last song's render state, so a section
    decodes its new frames and CONTEXT_FRAMES before them (964 frames in all, where a whole re-render per section
    decodes 300 + 600 + 900), and the last song sounds as a whole render of its codes."""
    from yue import Pipeline
    from yue.codec.render import CONTEXT_FRAMES

    pipeline = Pipeline.tiny(tiny_dir)
    service = serving.Service(lambda choice: pipeline, OutputStore(tmp_path), Limits())
    lyrics = "[verse]\nsmall lights\n\n[chorus]\nrise and shine\n\n[outro]\ngood night\n"
    job = service.lyrics_job("pop", lyrics, shared_settings({**SMALL, "sections": 3, "max_new_tokens": 600,
                                                             "min_new_tokens": 600, "takes": 2}))
    forked = Forked(service)
    updates = list(service.run(job, "wav", "session", forked))
    assert updates[-1].text.startswith("Done: 3 of 3 sections") and forked.calls == 3
    for take, song in enumerate(forked.songs[-1]):
        assert song.codes.frames == 900
        decoded = [states[take].decoded_frames for states in forked.states]  # counted over the whole run
        assert np.diff([0, *decoded]).tolist() == [300, 300 + CONTEXT_FRAMES, 300 + CONTEXT_FRAMES]
        mix, vocal, instrumental = pipeline.render(song.codes)
        for got, expected in ((song.mix, mix), (song.vocal, vocal), (song.instrumental, instrumental)):
            assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-5


def test_what_crosses_a_calls_queue_is_bounded_whatever_the_songs_length_and_takes(tmp_path, tiny_dir, capsys):
    """12 sections x 4 takes with audio, a call a section: each call's pickled arguments and each value it yields
    stay under MESSAGE_BYTES (512 B) while the song grows; the songs, render states and audio stay in the run's
    folder. Prints what crossed and what the folder handed over (bytes, and seconds to write and read them)."""
    import time

    from yue import Pipeline

    pipeline = Pipeline.tiny(tiny_dir)
    service = serving.Service(lambda choice: pipeline, OutputStore(tmp_path), Limits())
    lyrics = "".join(f"[verse]\nline {n}\n\n" for n in range(12))
    job = service.lyrics_job("pop", lyrics, shared_settings({**SMALL, "sections": 12, "max_new_tokens": 20,
                                                             "min_new_tokens": 20, "takes": 4}))
    forked = Forked(service)
    updates = list(service.run(job, "wav", "session", forked))
    assert updates[-1].text.startswith("Done: 12 of 12 sections") and forked.calls == 12
    assert max(max(sizes) for sizes in forked.sizes) <= MESSAGE_BYTES
    by_call = [sum(sizes) for sizes in forked.sizes]
    songs, states = forked.songs[-1], forked.states[-1]
    moved = pickle.dumps(songs) + pickle.dumps(states)
    started = time.perf_counter()
    (tmp_path / "bench").mkdir()
    folder = RunFiles(tmp_path / "bench")
    folder.save_songs(11, [replace(song, render_state=state) for song, state in zip(songs, states)])
    written = time.perf_counter()
    folder.songs(11, 4), folder.states(11, 4)
    with capsys.disabled():
        print(f"\n12 sections x 4 takes (tiny, {songs[0].seconds:.1f} s of song): per call {min(by_call)}-"
              f"{max(by_call)} bytes through the queues (largest message {max(max(c) for c in forked.sizes)} B); the "
              f"last section's hand-over in the folder {len(moved) / 1e6:.2f} MB, written in "
              f"{written - started:.3f} s, read in {time.perf_counter() - written:.3f} s")
