"""space/jobs.py without gradio and without models: raw endpoint values checked into typed values and jobs, with a
message naming the field for what is refused."""
import numpy as np
import pytest

from .helpers import LYRICS, SMALL, codes
from space import jobs
from yue.config import Limits, Sampling


# -- checks ----------------------------------------------------------------------------------------------------------

def test_shared_settings_become_typed_values():
    """Endpoint values (floats from sliders) become a Sampling with int token counts, the section count and seed."""
    shared = jobs.shared_settings({**SMALL, "max_new_tokens": 40.0, "sections": 2.0})
    assert shared.sampling == Sampling(top_p=0.93, temperature=1.0, repetition_penalty=1.1, guidance_first=1.5,
                                       guidance_later=1.2, max_new_tokens=40, min_new_tokens=4)
    assert (shared.sections, shared.seed, shared.language, shared.output_format) == (2, 42, "en", "wav")
    assert isinstance(shared.sampling.max_new_tokens, int) and isinstance(shared.sections, int)


def test_takes_default_to_one_and_follow_the_limit():
    """An endpoint call without takes makes one take; a smaller app limit refuses more, naming the field."""
    assert jobs.shared_settings(SMALL).takes == 1 and jobs.shared_settings({**SMALL, "takes": 4.0}).takes == 4
    with pytest.raises(ValueError, match="takes must be a whole number from 1 to 2; got 3"):
        jobs.shared_settings({**SMALL, "takes": 3}, Limits(max_takes=2))


def test_random_seed_leaves_the_seed_to_draw():
    """random_seed=True gives seed None (drawn later), even when the seed box is empty."""
    assert jobs.shared_settings({**SMALL, "random_seed": True, "seed": None}).seed is None


def test_listening_is_on_unless_switched_off_and_the_jobs_carry_it(tmp_path):
    """An endpoint call without `listen` listens (as the page's default); listen=False reaches the job of a song, of
    a continuation and of a kept take (a continuation's job with the kept take's source)."""
    on, off = jobs.shared_settings(SMALL), jobs.shared_settings({**SMALL, "listen": False})
    assert on.listen is True and off.listen is False
    service, made = jobs.Jobs(Limits()), made_takes(tmp_path)
    for shared in (on, off):
        assert service.lyrics_job("pop", LYRICS, shared).listen is shared.listen
        assert service.continue_job(made[0]["bundle"], None, None, "end", 1, 0, "pop", LYRICS + "[outro]\nbye\n",
                                    None, shared, None).listen is shared.listen
        assert service.keep_job(made, 2, shared, None).listen is shared.listen


@pytest.mark.parametrize("overrides, message", [
    (dict(listen="maybe"), "listen must be true or false; got 'maybe'"),
    (dict(listen=None), "listen must be true or false; got None"),
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
    (dict(takes=0), "takes must be a whole number from 1 to 4; got 0"),
    (dict(takes=5), "takes must be a whole number from 1 to 4; got 5"),
    (dict(takes=1.5), r"takes must be a whole number from 1 to 4; got 1.5 \(fractions are not rounded\)"),
    (dict(takes="2"), r"takes must be a whole number from 1 to 4; got '2' \(str\)"),
    (dict(takes=None), "takes is empty: enter a whole number from 1 to 4"),
])
def test_bad_shared_settings_say_what_to_change(overrides, message):
    """Each bad shared setting (None, text, NaN, inf, fractions, out of range) raises a ValueError naming the field
    and what is allowed; nothing is rounded or wrapped."""
    with pytest.raises(ValueError, match=message):
        jobs.shared_settings({**SMALL, **overrides})


def test_the_largest_seed_is_used_as_given():
    """The top of the documented seed range is accepted unchanged."""
    from yue.checks import SEED_MAX

    assert jobs.shared_settings({**SMALL, "seed": SEED_MAX}).seed == SEED_MAX == 2**53 - 1


def test_lyrics_job_checks_the_request_before_any_model_is_loaded():
    """Empty lyrics, a bad genre, a control token's name or too many sections are refused by the job itself (Jobs
    has no models to load)."""
    service = jobs.Jobs(Limits())
    shared = jobs.shared_settings(SMALL)
    for genres, lyrics, message in (("pop", "", "Lyrics are empty"), ("", LYRICS, "Genre tags are empty"),
                                    ("pop", LYRICS + "<stage_1>\n", "Lyrics hold '<stage_1>' on line"),
                                    ("pop", "[verse]\nla\n", r"Sections to generate \(sections\) is 2 but the lyrics "
                                                             r"have only 1 section: set it to 1")):
        with pytest.raises(ValueError, match=message):
            service.lyrics_job(genres, lyrics, shared)


def test_check_upload_refuses_long_or_unreadable_files(tmp_path):
    """No upload passes as None; an upload longer than the limit, not audio at all, or with NaN/inf samples is
    refused with a message before any GPU work."""
    import soundfile

    assert jobs.check_upload(None, "reference track", Limits()) is None
    short, long, junk = tmp_path / "short.wav", tmp_path / "long.wav", tmp_path / "junk.wav"
    soundfile.write(short, np.zeros(8000, dtype=np.float32), 8000)
    soundfile.write(long, np.zeros(15 * 8000, dtype=np.float32), 8000)
    junk.write_bytes(b"not audio")
    limits = Limits(max_reference_seconds=12.0)
    assert jobs.check_upload(str(short), "reference track", limits) == str(short)
    with pytest.raises(ValueError, match="The vocal stem is 15 s long; the limit is 12 s"):
        jobs.check_upload(str(long), "vocal stem", limits)
    with pytest.raises(ValueError, match="not an audio file this app can read"):
        jobs.check_upload(str(junk), "vocal stem", limits)
    nan = tmp_path / "nan.wav"
    soundfile.write(nan, np.where(np.arange(8000) == 5, np.inf, 0.1), 8000, subtype="FLOAT")
    with pytest.raises(ValueError, match="nan.wav holds 1 NaN or infinite samples"):
        jobs.check_upload(str(nan), "vocal stem", limits)


def test_load_bundle_names_a_file_that_is_not_a_bundle(tmp_path):
    """A file that is not an .npz bundle gives a ValueError with its name; a saved bundle loads back."""
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.npz is not a song bundle"):
        jobs.load_bundle(str(junk))
    song = codes(3, 2)
    loaded, settings = jobs.load_bundle(str(song.save(tmp_path / "song.npz", {"seed": 7})))
    assert loaded.stage1.section_frames == (3, 2) and settings == {"seed": 7}


def test_a_file_gone_from_the_server_is_named_by_its_input_without_the_servers_path(tmp_path):
    """An upload or bundle deleted from the server's temp folder (e.g. by a clean-up) is refused with the input it
    was given for and what to do, and the message holds no server folder."""
    gone = tmp_path / "cache" / "0123abcd" / "reference-example.wav"
    with pytest.raises(ValueError) as error:
        jobs.check_upload(str(gone), "reference track", Limits())
    assert str(error.value).startswith("The reference track is no longer on the server") and "upload it again" in str(
        error.value) and str(tmp_path) not in str(error.value)
    with pytest.raises(ValueError) as error:
        jobs.load_bundle(str(tmp_path / "song-2of2.npz"))
    assert str(error.value) == ("The song bundle song-2of2.npz is no longer on the server (files are deleted after a "
                                "while): upload the .npz again.")


def test_choose_start_end_section_and_time():
    """'end' keeps the whole song, 'section' the first N sections, 'time' the frames before the cut (50 a second)."""
    song = codes(100, 50)
    assert jobs.choose_start(song, "end", None, None) is song
    assert jobs.choose_start(song, "section", 1, None).stage1.section_frames == (100,)
    assert jobs.choose_start(song, "time", None, 2.5).stage1.section_frames == (100, 25)


@pytest.mark.parametrize("continue_from, keep, cut, message", [
    ("section", 0, None, "Keep at least 1 section"),
    ("section", "", None, r"sections to keep \(keep_sections\) is empty"),
    ("section", 1.5, None, "got 1.5 \\(fractions are not rounded\\)"),
    ("time", None, float("nan"), r"cut time \(cut_seconds\) must be a number; got nan"),
    ("time", None, "1", r"cut time \(cut_seconds\) must be a number; got '1' \(str\)"),
    ("time", None, 0, r"between 0.02 s \(one frame\) and 3.0 s"),
    ("time", None, 0.001, r"cut time \(cut_seconds\) must be between 0.02 s \(one frame\) .* start over, use the"),
    ("time", None, 3.5, r"between 0.02 s \(one frame\) and 3.0 s"),
    ("middle", None, None, "continue_from must be one of end, section, time"),
])
def test_choose_start_refuses_what_cannot_be_kept(continue_from, keep, cut, message):
    """Keeping no section, an empty count, a cut outside the song or an unknown mode raise a clear ValueError."""
    with pytest.raises(ValueError, match=message):
        jobs.choose_start(codes(100, 50), continue_from, keep, cut)


def test_stems_of_different_lengths_are_refused_in_seconds_before_encoding(tmp_path):
    """Continue from stems, or a reference pair: lengths that differ by more than a frame are refused with both
    lengths in seconds and what to do, before anything is encoded (`encode` is never called)."""
    import soundfile

    for name, seconds in (("v.wav", 2.0), ("i.wav", 1.5), ("i2.wav", 2.01)):
        soundfile.write(tmp_path / name, 0.1 * np.ones(int(8000 * seconds), dtype=np.float32), 8000)
    service = jobs.Jobs(Limits())
    shared = jobs.shared_settings(SMALL)
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
    song = jobs.stems_codes(np.arange(10), np.arange(7))
    assert song.stage1.section_frames == (7,) and song.stage1.labels == ("verse",)
    np.testing.assert_array_equal(song.stage1.vocal, np.arange(7))


def test_prefill_lyrics_adds_a_new_section_only_when_all_are_kept():
    """The song's sections come back normalised; an empty [verse] follows only when no section is left to redo."""
    assert jobs.prefill_lyrics(LYRICS, 1) == "[verse]\nsmall lights on the water\n\n[chorus]\nrise and shine\n\n"
    assert jobs.prefill_lyrics(LYRICS, 2).endswith("[chorus]\nrise and shine\n\n[verse]\n")
    assert jobs.prefill_lyrics("", 0) == "[verse]\n"


# -- keeping a take ------------------------------------------------------------------------------------------------

def made_takes(tmp_path, lyrics: str = LYRICS) -> list[dict]:
    """Two takes of a one-section song as the app records them (bundles with their take and seed)."""
    made = []
    for take in (1, 2):
        settings = {"genres": "pop piano", "lyrics": lyrics, "mode": "cot", "take": take, "seed": 6 + take}
        bundle = str(codes(3 + take, labels=("verse",)).save(tmp_path / f"take{take}.npz", settings))
        made.append({"take": take, "seed": 6 + take, "mix": None, "vocal": None, "instrumental": None,
                     "bundle": bundle})
    return made


def test_keep_job_continues_the_kept_take_with_the_next_section_and_every_take(tmp_path):
    """Keeping take 2: a continuation of take 2's bundle from its end, with its genres and lyrics, one new section,
    as many takes as asked, and the kept take and its seed recorded as the source (with `kept`: a take was kept,
    which the page and the summary name)."""
    made = made_takes(tmp_path)
    job = jobs.Jobs(Limits()).keep_job(made, 2, jobs.shared_settings({**SMALL, "takes": 3, "seed": 7}), None)
    request = job.build()
    assert job.source == {"take": 2, "seed": 8, "kept": 2} and job.choice.mode == "cot"
    assert (request.genres, request.lyrics, request.segments, request.takes, request.seed) == (
        "pop piano", LYRICS, 2, 3, 7)
    assert request.previous.stage1.section_frames == (5,)  # take 2's song


@pytest.mark.parametrize("made, take, message", [
    (None, 1, "Make a song with 2 or more takes first"),
    ([], 1, "Make a song with 2 or more takes first"),
    ("two", 3, "take must be a whole number from 1 to 2; got 3"),
    ("two", 0, "take must be a whole number from 1 to 2; got 0"),
])
def test_keep_job_refuses_what_it_cannot_keep(tmp_path, made, take, message):
    made = made_takes(tmp_path) if made == "two" else made
    with pytest.raises(ValueError, match=message):
        jobs.Jobs(Limits()).keep_job(made, take, jobs.shared_settings(SMALL), None)


def test_keeping_a_take_that_has_every_section_says_where_to_add_more(tmp_path):
    made = made_takes(tmp_path, "[verse]\nonly one\n")
    with pytest.raises(ValueError, match=r"Take 1 already has every section of its lyrics \(1\). .* \(take1.npz\) "
                                         "in the Continue a song tab"):
        jobs.Jobs(Limits()).keep_job(made, 1, jobs.shared_settings(SMALL), None)


@pytest.mark.parametrize("start, end, message", [
    (0, 1e308, r"window end \(end_s\) must be a number from 0 to 600; got 1e\+308"),
    (1e308, 2e308, r"window start \(start_s\) must be a number from 0 to 600; got 1e\+308"),
    (5, 30, r"The window start \(start_s\) must be below the reference's length \(2.0 s\); got 5"),
])
def test_a_reference_window_outside_the_file_is_refused_naming_the_field(tmp_path, start, end, message):
    """end_s=1e308 (an OverflowError in the app before), a start past the file's end: refused before encoding."""
    import soundfile

    soundfile.write(tmp_path / "mix.wav", 0.1 * np.ones(16000, dtype=np.float32), 8000)
    with pytest.raises(ValueError, match=message):
        jobs.Jobs(Limits()).style_job(str(tmp_path / "mix.wav"), None, None, start, end, "pop", LYRICS,
                                      jobs.shared_settings(SMALL), lambda *a: pytest.fail("encoded"))


def test_an_empty_upload_is_called_empty_before_its_window_is_checked(tmp_path):
    """Weak answer 5: a 0-frame WAV got a window message ("must be below the reference's length (0.0 s)")."""
    import soundfile

    soundfile.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(ValueError, match=r"The reference track: empty.wav is empty \(no samples\)."):
        jobs.Jobs(Limits()).style_job(str(tmp_path / "empty.wav"), None, None, 0, 30, "pop", LYRICS,
                                      jobs.shared_settings(SMALL), lambda *a: pytest.fail("encoded"))


def test_a_window_too_long_for_any_prompt_is_refused_before_encoding(tmp_path):
    """Weak answer 12: a 599 s reference was refused only after 8.7 s of encoding. A window whose ids alone exceed
    the prompt's room (here 170 s of a mix beside 8000 new tokens: 8500 ids > 8383) is refused before `encode`;
    the same window with fewer new tokens goes on to be encoded."""
    import soundfile

    soundfile.write(tmp_path / "mix.wav", 0.1 * np.ones(8000 * 170, dtype=np.float32), 8000)
    service, encoded = jobs.Jobs(Limits()), []
    long_sections = jobs.shared_settings({**SMALL, "max_new_tokens": 8000, "min_new_tokens": 4})
    with pytest.raises(ValueError, match=r"The reference window is too long: its 170.0 s take 8500 tokens, more than "
                                         r"the 8383 .* at most 167 s long"):
        service.style_job(str(tmp_path / "mix.wav"), None, None, 0, 599, "pop", LYRICS, long_sections,
                          lambda *a: pytest.fail("encoded"))
    job = service.style_job(str(tmp_path / "mix.wav"), None, None, 0, 599, "pop", LYRICS, jobs.shared_settings(SMALL),
                            lambda *a: encoded.append(a) or [np.zeros(50, dtype=np.int64)])
    job.build()
    assert len(encoded) == 1


def test_uploads_too_short_to_encode_or_huge_once_decoded_are_refused_before_gpu_time(tmp_path):
    """A 16-sample stem (the codec needs one 20 ms frame) and a FLAC whose header holds 8 channels at 192 kHz for
    590 s: refused by check_upload, naming the input, before any GPU time is booked."""
    import soundfile

    from ..test_audio import claiming_flac

    soundfile.write(tmp_path / "blip.wav", np.full(16, 0.5, np.float32), 16000)
    with pytest.raises(ValueError, match="The vocal stem: blip.wav is 1.0 ms long; the codec needs at least 20 ms"):
        jobs.check_upload(str(tmp_path / "blip.wav"), "vocal stem", Limits())
    wide = claiming_flac(tmp_path / "wide.flac", 8, 192_000, 590)
    with pytest.raises(ValueError, match="The reference track: wide.flac holds 8 channels at 192000 Hz"):
        jobs.check_upload(str(wide), "reference track", Limits())


def test_a_bundle_with_stems_is_refused_not_half_ignored(tmp_path):
    """/continue_song with a bundle and stems silently ignored the stems: refused as style transfer refuses a mix
    with stems, before anything is read or encoded."""
    with pytest.raises(ValueError, match="Give either a song bundle .* or a vocal and an instrumental stem to "
                                         "continue, not both"):
        jobs.Jobs(Limits()).continue_job(str(tmp_path / "song.npz"), str(tmp_path / "v.wav"), None, "end", 1, 0, "pop",
                                         LYRICS, None, jobs.shared_settings(SMALL), lambda *a: pytest.fail("encoded"))


@pytest.mark.parametrize("keep", [0, -1])
def test_keeping_no_section_is_refused_everywhere(keep):
    """--keep-sections 0 (CLI, Python) quietly started a new song while the app refused 0: one rule, in SongCodes."""
    with pytest.raises(ValueError, match=f"keep 1 to 2 of them, not {keep} \\(to start over, make a new song\\)"):
        codes(100, 50).keep_sections(keep)


def test_too_many_sections_name_the_field_and_the_dropped_tag():
    """The page's field is *Sections to generate*, not the pipeline's `segments`; a [pre-chorus] the official rule
    drops is named in the same message, with the tag to write."""
    lyrics = "[verse]\nla la\n\n[pre-chorus]\nup we go\n"
    with pytest.raises(ValueError, match=r"^Sections to generate \(sections\) is 2 but the lyrics have only 1 "
                                         r"section: set it to 1 or add sections\. Line 4: '\[pre-chorus\]' is not a "
                                         r"section tag .* Write \[prechorus\] to keep them\."):
        jobs.Jobs(Limits()).lyrics_job("pop", lyrics, jobs.shared_settings(SMALL))


def test_a_lone_surrogate_from_raw_json_is_refused_before_any_model():
    """Raw JSON "\\udcff" in lyrics or genre reached the tokenizer (a pybind11 cast error): refused by the precheck."""
    service, shared = jobs.Jobs(Limits()), jobs.shared_settings(SMALL)
    with pytest.raises(ValueError, match=r"Lyrics hold a character that is not text \(U\+DCFF, a lone surrogate\)"):
        service.lyrics_job("pop", "[verse]\nla \udcff\n[chorus]\nhey\n", shared)
    with pytest.raises(ValueError, match="Genre tags hold a character that is not text"):
        service.lyrics_job("pop \udcff", LYRICS, shared)


def test_bundle_reads_at_once_are_bounded_and_one_read_does_not_block_another(tmp_path, monkeypatch):
    """The page's upload helpers skip the queue (and with it Gradio's concurrency limits): two uploads at once took
    the app to 7.5 GB, and with one read at a time a 780 000-entry directory kept another user's 5 KB bundle waiting
    8.5 s. Reads are bounded one by one (test_arrays), at most BUNDLE_READS_AT_ONCE run together, and a read that
    has not finished does not hold up the next one."""
    import threading

    path = codes(3, 2).save(tmp_path / "song.npz")
    active, most, release, lock = [0], [0], threading.Event(), threading.Lock()
    real = jobs.SongCodes.load

    def load(given):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        if given.endswith("slow.npz"):
            release.wait(timeout=60)  # a read still going on while others come in
        with lock:
            active[0] -= 1
        return real(path)

    monkeypatch.setattr(jobs.SongCodes, "load", load)
    slow = tmp_path / "slow.npz"
    slow.write_bytes(path.read_bytes())
    blocked = [threading.Thread(target=jobs.load_bundle, args=(str(slow),)) for _ in range(jobs.BUNDLE_READS_AT_ONCE)]
    for thread in blocked[:-1]:
        thread.start()
    while active[0] < jobs.BUNDLE_READS_AT_ONCE - 1:  # the slow reads are under way
        threading.Event().wait(0.01)
    codes_read, _ = jobs.load_bundle(str(path))  # another user's bundle: read while the slow ones go on
    assert codes_read.frames == 5
    blocked[-1].start()  # now every place is taken: one more waits
    while active[0] < jobs.BUNDLE_READS_AT_ONCE:
        threading.Event().wait(0.01)
    waiting = threading.Thread(target=jobs.load_bundle, args=(str(path),))
    waiting.start()
    waiting.join(timeout=0.5)
    assert waiting.is_alive() and most[0] == jobs.BUNDLE_READS_AT_ONCE
    release.set()
    for thread in [*blocked, waiting]:
        thread.join(timeout=60)
    assert most[0] == jobs.BUNDLE_READS_AT_ONCE and active[0] == 0
