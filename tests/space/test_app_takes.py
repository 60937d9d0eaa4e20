"""Takes over gradio_client: two takes are two songs of consecutive seeds, and a kept take goes on exactly."""

import numpy as np

from .helpers import LYRICS, SMALL, check_audio, every_take, has_codec, same_audio, song


def test_two_takes_are_two_songs_and_take_2_is_the_one_take_song_of_the_next_seed(client):
    """takes=2, seed 20: the six outputs are take 1's; /takes gives both takes' files with seeds 20 and 21, two
    different songs; take 2's mix and codes equal those of a one-take run with seed 21."""
    from yue.song import SongCodes

    mix, vocal, instrumental, bundle, summary, seed = song(client, takes=2, seed=20)
    takes = every_take(client)
    assert seed == 20 and "2 takes, seeds 20 to 21" in summary
    assert [(take["take"], take["seed"]) for take in takes] == [(1, 20), (2, 21)]
    first, second = (SongCodes.load(take["bundle"]) for take in takes)
    assert (first[1]["take"], first[1]["seed"], second[1]["take"], second[1]["seed"]) == (1, 20, 2, 21)
    np.testing.assert_array_equal(first[0].vocal, SongCodes.load(bundle)[0].vocal)  # the outputs are take 1
    assert not np.array_equal(first[0].stage1.vocal, second[0].stage1.vocal)
    alone = song(client, seed=21)
    np.testing.assert_array_equal(second[0].vocal, SongCodes.load(alone[3])[0].vocal)
    np.testing.assert_array_equal(second[0].instrumental, SongCodes.load(alone[3])[0].instrumental)
    if has_codec():
        check_audio([takes[1][kind] for kind in ("mix", "vocal", "instrumental")], second[0].frames)
        assert same_audio(takes[1]["mix"], alone[0]) and same_audio(takes[0]["mix"], mix)
        assert not same_audio(takes[0]["mix"], takes[1]["mix"])
    else:
        assert takes[1]["mix"] is None


def test_keep_a_take_and_go_on_continues_every_take_from_it_exactly(client):
    """The best-of-N step as an API client does it: after section 1 of 2 takes (seed 30), take 2's bundle is
    continued with takes=2 and seed 30. Both takes start with take 2's section 1, take 2 goes on exactly as in a
    2-section run, and the new bundles record the kept take and its seed; take 2's bundle continued alone with its
    own seed (31) makes the same song."""
    from gradio_client import handle_file
    from yue.song import SongCodes

    song(client, takes=2, seed=30, sections=1)
    kept = every_take(client)[1]["bundle"]
    song(client, takes=2, seed=30)
    whole = SongCodes.load(every_take(client)[1]["bundle"])[0]
    common = dict(vocal_stem=None, instrumental_stem=None, continue_from="end", keep_sections=1, cut_seconds=0,
                  genres="pop piano uplifting", lyrics=LYRICS, **{**SMALL, "sections": 1})
    *_, summary, _ = client.predict(bundle=handle_file(kept), **{**common, "seed": 30, "takes": 2},
                                    api_name="/continue_song")
    assert summary.startswith("Done: 2 of 2")
    went_on = [SongCodes.load(take["bundle"]) for take in every_take(client)]
    first = SongCodes.load(kept)[0].frames
    for codes, settings in went_on:
        np.testing.assert_array_equal(codes.stage1.vocal[:first], SongCodes.load(kept)[0].stage1.vocal)
        assert settings["continued_from"] == {"take": 2, "seed": 31, "sections": 1}
    np.testing.assert_array_equal(went_on[1][0].vocal, whole.vocal)
    *_, alone, _, _ = client.predict(bundle=handle_file(kept), **{**common, "seed": 31}, api_name="/continue_song")
    np.testing.assert_array_equal(SongCodes.load(alone)[0].vocal, whole.vocal)


def test_takes_of_a_client_without_a_run_are_empty(server):
    from gradio_client import Client

    assert Client(server[0], verbose=False).predict(api_name="/takes") == ([], [])
