"""Continuing, stopping and style transfer over gradio_client: kept sections stay exactly as made."""
import time

import numpy as np
import pytest

from .helpers import LYRICS, SMALL, app_error, check_audio, every_take, has_codec, song


def test_continue_regenerates_exactly_and_extends(client):
    """Keeping section 1 and regenerating section 2 with the same seed gives the same song (seeds are per section);
    continuing from the end adds a third section after the two kept ones."""
    from gradio_client import handle_file
    from yue.song import SongCodes

    first = SongCodes.load(song(client, seed=7)[3])[0]
    common = dict(vocal_stem=None, instrumental_stem=None, genres="pop piano uplifting", cut_seconds=0,
                  **{**SMALL, "seed": 7, "sections": 1})
    *_, bundle, summary, _ = client.predict(bundle=handle_file(song(client, seed=7)[3]), continue_from="section",
                                            keep_sections=1, lyrics=LYRICS, **common, api_name="/continue_song")
    again = SongCodes.load(bundle)[0]
    assert summary.startswith("Done: 2 of 2")
    np.testing.assert_array_equal(again.stage1.vocal, first.stage1.vocal)
    np.testing.assert_array_equal(again.vocal, first.vocal)

    longer = LYRICS + "\n[outro]\ngoodnight\n"
    *_, bundle, summary, _ = client.predict(bundle=handle_file(bundle), continue_from="end", keep_sections=1,
                                            lyrics=longer, **common, api_name="/continue_song")
    extended, settings = SongCodes.load(bundle)
    assert summary.startswith("Done: 3 of 3") and settings["lyrics"] == longer
    assert extended.stage1.labels == ("verse", "chorus", "outro")
    np.testing.assert_array_equal(extended.stage1.vocal[:first.frames], first.stage1.vocal)


def test_continue_cut_at_a_time_keeps_the_part_before_it(client):
    from gradio_client import handle_file
    from yue.song import SongCodes

    bundle = song(client, seed=3)[3]
    whole = SongCodes.load(bundle)[0]
    cut_s = (whole.stage1.section_frames[0] + 2) / 50  # two frames into section 2
    *_, out, summary, _ = client.predict(
        bundle=handle_file(bundle), vocal_stem=None, instrumental_stem=None, continue_from="time", keep_sections=1,
        cut_seconds=cut_s, genres="pop", lyrics=LYRICS + "\n[outro]\nbye\n", **{**SMALL, "sections": 1},
        api_name="/continue_song")
    made = SongCodes.load(out)[0]
    assert made.stage1.section_frames[:2] == (whole.stage1.section_frames[0], 2)
    np.testing.assert_array_equal(made.stage1.vocal[:whole.stage1.section_frames[0] + 2],
                                  whole.stage1.vocal[:whole.stage1.section_frames[0] + 2])


def test_continue_without_a_song_or_with_bad_input(client, server):
    from gradio_client import handle_file

    base = dict(vocal_stem=None, instrumental_stem=None, continue_from="end", keep_sections=1, cut_seconds=0,
                genres="pop", lyrics=LYRICS, **SMALL)
    call = lambda **kw: client.predict(**{**base, **kw}, api_name="/continue_song")
    # A fresh client has a fresh session: no last song to fall back on.
    from gradio_client import Client

    fresh = Client(server[0], verbose=False)
    assert "Nothing to continue" in app_error(lambda: fresh.predict(bundle=None, **base, api_name="/continue_song"))
    junk = server[1] / "junk.npz"
    junk.write_bytes(b"not a zip")
    assert "is not a song bundle" in app_error(lambda: call(bundle=handle_file(str(junk))))
    bundle = handle_file(song(client)[3])
    assert "keep 1 to 2 of them, not 5" in app_error(
        lambda: call(bundle=bundle, continue_from="section", keep_sections=5))
    assert "sections to keep (keep_sections) must be a whole number; got 'two'" in app_error(
        lambda: call(bundle=bundle, continue_from="section", keep_sections="two"))
    assert "continue_from must be one of end, section, time; got None" in app_error(
        lambda: call(bundle=bundle, continue_from=None))
    assert "between 0.02 s (one frame) and" in app_error(
        lambda: call(bundle=bundle, continue_from="time", cut_seconds=99))
    assert "must list those sections followed by at least one new section" in app_error(lambda: call(bundle=bundle))


def test_stop_keeps_the_sections_already_made(client):
    from yue.song import SongCodes

    slow = {**SMALL, "sections": 3, "max_new_tokens": 600, "min_new_tokens": 600}
    lyrics = LYRICS + "\n[outro]\nbye\n"
    job = client.submit(genres="pop", lyrics=lyrics, **slow, api_name="/lyrics_to_song")
    deadline = time.time() + 120
    while not any("Section 1 of 3 done" in update[4] for update in job.outputs()):
        assert time.time() < deadline and not job.done(), "the first section did not finish"
        time.sleep(0.1)
    client.predict(api_name="/stop")  # same client = same session as the running job
    *_, bundle, summary, _ = job.result(timeout=60)
    assert summary.startswith("Stopped: ") and "of 3 sections" in summary
    kept = len(SongCodes.load(bundle)[0].stage1.section_frames)
    assert 1 <= kept < 3 and summary.startswith(f"Stopped: {kept} of 3")


def test_style_transfer(client, server):
    from gradio_client import handle_file

    reference = server[1] / "outputs" / "reference-example.wav"  # written by build_demo from examples/
    base = dict(reference_vocal=None, reference_instrumental=None, start_s=0, end_s=8, genres="pop",
                lyrics=LYRICS, **SMALL)
    call = lambda **kw: client.predict(**{**base, **kw}, api_name="/style_transfer")
    assert "Upload a reference" in app_error(lambda: call(reference_mix=None))
    assert "window start (start_s) is empty" in app_error(lambda: call(reference_mix=None, start_s=None))
    assert "window end (end_s) must be a number from 0 to 12; got 'end'" in app_error(lambda: call(end_s="end"))
    assert "window end (end_s) must be a number from 0 to 12; got 1e+308" in app_error(lambda: call(end_s=1e308))
    assert "must end after it starts" in app_error(lambda: call(reference_mix=handle_file(str(reference)), end_s=0))
    long = server[1] / "long.wav"
    import soundfile

    soundfile.write(long, np.zeros(15 * 8000, dtype=np.float32), 8000)
    assert "is 15 s long; the limit is 12 s" in app_error(lambda: call(reference_mix=handle_file(str(long))))
    if not has_codec():
        assert "without the audio codec" in app_error(lambda: call(reference_mix=handle_file(str(reference))))
        return
    from yue.song import SongCodes

    nan = server[1] / "nan.wav"
    soundfile.write(nan, np.where(np.arange(8000) % 100 == 0, np.nan, 0.2), 8000, subtype="FLOAT")
    assert "nan.wav holds 80 NaN or infinite samples" in app_error(lambda: call(reference_mix=handle_file(str(nan))))
    mix, vocal, instrumental, bundle, summary, _ = call(reference_mix=handle_file(str(reference)), takes=2)
    codes, settings = SongCodes.load(bundle)
    assert summary.startswith("Done: 2 of 2") and settings["mode"] == "icl" and settings["reference"]["end_s"] == 8
    check_audio([mix, vocal, instrumental], codes.frames)
    takes = every_take(client)  # both takes in this style, with their own seeds
    assert [(take["take"], take["seed"], SongCodes.load(take["bundle"])[1]["mode"]) for take in takes] == [
        (1, 42, "icl"), (2, 43, "icl")]


@pytest.mark.skipif("not has_codec()", reason="encoding stems needs the codec (yue/weights/codec_loading.py)")
def test_continue_from_uploaded_stems(client, server):
    from gradio_client import handle_file
    from yue.song import SongCodes

    reference = handle_file(str(server[1] / "outputs" / "reference-example.wav"))
    mix, *_, bundle, summary, _ = client.predict(
        bundle=None, vocal_stem=reference, instrumental_stem=reference, continue_from="end", keep_sections=1,
        cut_seconds=0, genres="pop", lyrics=LYRICS, **{**SMALL, "sections": 1, "output_format": "flac"},
        api_name="/continue_song")
    codes = SongCodes.load(bundle)[0]
    assert summary.startswith("Done: 2 of 2") and codes.stage1.section_frames[0] == 500  # the 10 s stems
    check_audio([mix], codes.frames, "flac")
