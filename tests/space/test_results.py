"""space/results.py: the files each take of a run writes, their names and settings, and the words beside them."""
import os

import numpy as np

from .helpers import codes, token_only_song
from space import results
from yue.song import Song, SongCodes


# -- results ---------------------------------------------------------------------------------------------------------

def test_write_song_token_only_writes_just_the_bundle(tmp_path):
    """Without audio, only the bundle is written, named 'done of total', with sections_done in its settings."""
    files = results.write_song(tmp_path, token_only_song(codes(5), 1, 3), 1, 3, "wav", {"seed": 42})
    assert files[:3] == [None, None, None] and files[3].endswith("song-1of3.npz")
    assert SongCodes.load(files[3])[1] == {"seed": 42, "sections_done": 1}


def test_write_song_writes_three_tracks_in_the_chosen_format(tmp_path):
    """With audio: mix, vocal and instrumental files in the requested format, then the bundle."""
    audio = np.zeros(4410, dtype=np.float32)
    song = Song(44100, audio, audio, audio, codes(5), 42, 2, 2)
    files = results.write_song(tmp_path, song, 2, 2, "flac", {})
    assert [os.path.basename(f) for f in files] == ["mix-2of2.flac", "vocal-2of2.flac", "instrumental-2of2.flac",
                                                    "song-2of2.npz"]


def test_summary_in_words():
    """A stop before any section says nothing is kept; a token-only song says where the result is."""
    assert results.summary(None, 0, 2, 1.0, {}, True).startswith("Stopped before the first section")
    assert results.summary(None, 0, 2, 1.0, {}, False) == "Nothing was made."
    text = results.summary(token_only_song(codes(50), 1, 2), 1, 2, 3.0, {"stage1_s": 2.0}, False)
    assert text.startswith("Done: 1 of 2 sections, 1.0 s of audio in 3.0 s (stage 1 2.0 s).\nSeed 42.")
    assert "token-only" in text


def test_write_take_names_the_files_of_several_takes_and_records_the_take_in_the_bundle(tmp_path):
    """Take 2 of 3 (seed 43): take2-… files, a bundle whose settings hold take 2 and seed 43; one take keeps the
    plain names."""
    audio = np.zeros(4410, dtype=np.float32)
    song = Song(44100, audio, audio, audio, codes(5), 43, 1, 2)
    take = results.write_take(tmp_path, song, 2, 3, 1, 2, "wav", {"seed": 42, "takes": 3})
    assert (take.take, take.seed) == (2, 43)
    assert [os.path.basename(f) for f in take.files] == ["take2-mix-1of2.wav", "take2-vocal-1of2.wav",
                                                         "take2-instrumental-1of2.wav", "take2-song-1of2.npz"]
    assert SongCodes.load(take.bundle)[1] == {"seed": 43, "takes": 3, "take": 2, "sections_done": 1}
    alone = results.write_take(tmp_path, token_only_song(codes(5), 1, 2), 1, 1, 1, 2, "wav", {})
    assert os.path.basename(alone.bundle) == "song-1of2.npz" and alone.mix is None


def test_listing_gives_every_takes_files_in_order_and_a_table_of_names():
    """Files take by take (mix, vocal, instrumental, bundle; missing audio left out); the table names them."""
    made = [results.TakeFiles(1, 42, "/o/take1-mix.wav", "/o/take1-vocal.wav", "/o/take1-inst.wav",
                              "/o/take1-song.npz").as_dict(),
            results.TakeFiles(2, 43, None, None, None, "/o/take2-song.npz").as_dict()]
    files, table = results.listing(made)
    assert files == ["/o/take1-mix.wav", "/o/take1-vocal.wav", "/o/take1-inst.wav", "/o/take1-song.npz",
                     "/o/take2-song.npz"]
    assert table[1] == {"take": 2, "seed": 43, "mix": None, "vocal": None, "instrumental": None,
                        "bundle": "take2-song.npz"}
    assert table[0]["mix"] == "take1-mix.wav" and results.listing(None) == ([], [])



def test_the_kept_take_is_named_in_the_summary():
    """A run that went on from a kept take says which, with its seed; a plain run says nothing of it."""
    note = results.kept_note(2, 43)
    assert note == "Went on from take 2 (seed 43), the take you kept."
    text = results.summary(token_only_song(codes(50), 2, 2), 2, 2, 3.0, {}, False, takes=2, kept=note)
    assert "2 takes, seeds 42 to 43 (take 1 has seed 42, take 2 the next …)." in text and note in text
    assert results.kept_note(None, None) == "" and "Went on" not in results.summary(
        token_only_song(codes(50), 2, 2), 2, 2, 3.0, {}, False, takes=2)
