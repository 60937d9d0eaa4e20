"""The Space's song endpoint over gradio_client on tiny checkpoints: one update per section, seeds, every bad
input's message, the dropped lines in the summary."""
import re

import pytest

from .helpers import LYRICS, SMALL, app_error, check_audio, has_codec, song


def test_lyrics_to_song_streams_one_update_per_section(client):
    from yue.song import SongCodes

    job = client.submit(genres="pop piano uplifting", lyrics=LYRICS, **SMALL, api_name="/lyrics_to_song")
    mix, vocal, instrumental, bundle, summary, seed = job.result(timeout=120)
    texts = [update[4] for update in job.outputs()]
    assert any("Section 1 of 2 done" in t for t in texts) and any(re.search(r"composing, [\d.]+ of at most 0\.4 s of music", t) for t in texts)
    assert summary.startswith("Done: 2 of 2 sections") and seed == 42
    codes, settings = SongCodes.load(bundle)
    assert len(codes.stage1.section_frames) == 2 and codes.vocal.shape == (8, codes.frames)
    assert settings["lyrics"] == LYRICS and settings["seed"] == 42 and settings["mode"] == "cot"
    if has_codec():
        check_audio([mix, vocal, instrumental], codes.frames)
    else:
        assert mix is None and "token-only" in summary


def test_random_seed_is_reported_and_saved(client):
    from yue.song import SongCodes

    *_, bundle, summary, seed = song(client, random_seed=True, sections=1)
    assert isinstance(seed, int) and f"Seed {seed}." in summary
    assert SongCodes.load(bundle)[1]["seed"] == seed


def test_tiny_mode_refuses_another_precision_and_records_the_one_it_uses(client):
    """Weak answer 3: the tiny app ignored the precision asked for, and the bundle recorded it anyway. Another one
    than auto is refused (it would be ignored); the bundle records fp32, what the tiny checkpoints ran in."""
    from yue.song import SongCodes

    message = app_error(lambda: song(client, precision="int8", sections=1))
    assert "runs its tiny checkpoints in fp32 on the cpu: precision int8 would be ignored" in message
    *_, bundle, summary, seed = song(client, sections=1)
    assert SongCodes.load(bundle)[1]["precision"] == "fp32"


@pytest.mark.parametrize("overrides, message", [
    (dict(lyrics="no tags at all"), "Lyrics have no section tags"),
    (dict(lyrics="[verse]\n\n[chorus]\nla\n"), "Section 1 [verse] is empty"),
    (dict(lyrics="[verse]\n" + "la " * 3000), "the limit is 6000"),
    (dict(genres=" "), "Genre tags are empty"),
    (dict(sections=3), "Sections to generate (sections) is 3 but the lyrics have only 2 sections"),
    (dict(min_new_tokens=60), "Min tokens per section (min_new_tokens) must be at most Max tokens per section"),
    # a list or dict was turned into its Python repr and sung (lone surrogates: test_jobs; gradio_client cannot send)
    (dict(genres=["pop", "rock"]), "genres must be text; got ['pop', 'rock'] (list)"),
    (dict(lyrics={"verse": "la"}), "lyrics must be text; got {'verse': 'la'} (dict)"),
    (dict(top_p=0), "Top-p (top_p) must be a number from 0.05 to 1; got 0"),
    (dict(output_format="ogg"), "output_format must be one of wav, flac, mp3; got 'ogg'"),
    # raw API values: None or text for a slider, a fraction for a whole number (NaN: test_jobs.py)
    (dict(sections=None), "sections is empty: enter a whole number from 1 to 12"),
    (dict(temperature="hot"), "Temperature (temperature) must be a number from 0.1 to 2; got 'hot' (str)"),
    (dict(max_new_tokens=None), "Max tokens per section (max_new_tokens) is empty"),
    (dict(guidance_first=5), "Guidance, first section (guidance_first) must be a number from 1 to 3; got 5"),
    (dict(seed=1.5), "got 1.5 (fractions are not rounded)"),
    (dict(random_seed=None), "random_seed must be true or false; got None"),
    (dict(listen="maybe"), "listen must be true or false; got 'maybe'"),
    (dict(language=None), "language must be one of en, zh, jp-kr; got None"),
    (dict(takes=5), "takes must be a whole number from 1 to 4; got 5"),
    (dict(takes=0), "takes must be a whole number from 1 to 4; got 0"),
    (dict(takes="two"), "takes must be a whole number from 1 to 4; got 'two' (str)"),
    (dict(takes=None), "takes is empty: enter a whole number from 1 to 4"),
])
def test_bad_input_gives_a_clear_message(client, overrides, message):
    assert message in app_error(lambda: song(client, **overrides))


def test_a_seed_outside_the_range_is_refused_and_the_client_stays_usable(client):
    """2**64 and 1e30 get the documented range (not a serialisation TypeError); the same client's next call works,
    and the top of the range is used and reported as given."""
    from yue.checks import SEED_MAX

    for seed in (2**64, 1e30, -1):
        assert "seed must be a whole number from 0 to 9007199254740991 (2**53 - 1)" in app_error(
            lambda: song(client, seed=seed, sections=1))
    *_, summary, seed = song(client, seed=SEED_MAX, sections=1)
    assert seed == SEED_MAX and f"Seed {SEED_MAX}." in summary


def test_too_few_raw_inputs_get_a_message_not_a_null_error(server):
    """A raw HTTP call with 3 of the 17 inputs: the error event carries Gradio's message (show_error is on)."""
    import httpx

    url = server[0] + "gradio_api/call/lyrics_to_song"
    event = httpx.post(url, json={"data": ["pop", LYRICS, "en"]}, timeout=30).json()["event_id"]
    stream = httpx.get(f"{url}/{event}", timeout=60).text
    assert "event: error" in stream and "didn't receive enough input values (needed: 17, got: 3)" in stream


def test_dropped_lines_are_in_the_api_summary(client):
    """The song is made from the official sections, and the summary says which lines were dropped and why."""
    *_, summary, _ = song(client, lyrics=LYRICS + "\n[Verse 2]\nup we go\n", sections=1)
    assert summary.startswith("Done: 1 of 1") and "⚠ Line 7: '[Verse 2]' is not a section tag" in summary
