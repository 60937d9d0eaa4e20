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
    assert text.startswith("Done: 1 of 2 sections, 1.0 s of audio in 3.0 s (composing 2.0 s).\nSeed 42.")
    assert "token-only" in text and "code bundle" not in text


def test_the_summary_speaks_of_music_and_the_details_keep_the_models_names():
    """The summary names the steps in a musician's words (composing, adding detail, rendering the audio), never
    'stage 1'; the folded details keep the stage names, the token budget in seconds and the precision."""
    timings = {"stage1_s": 8.3, "stage2_s": 7.3, "audio_s": 1.2}
    text = results.summary(token_only_song(codes(50), 1, 1), 1, 1, 25.0, timings, False)
    assert "in 25.0 s (composing 8.3 s, adding detail 7.3 s, rendering the audio 1.2 s)" in text
    assert "stage" not in text and "token" not in text.replace("token-only", "")
    detail = results.details(timings, 300, "bf16", "Section 1/1: stage1 120/300 tokens at 40.0 tokens/s")
    assert detail.startswith("Section 1/1: stage1 120/300 tokens at 40.0 tokens/s\n")
    assert "stage 1 8.3 s, stage 2 7.3 s, audio 1.2 s" in detail and "300 stage-1 tokens at most" in detail
    assert "precision bf16" in detail


def test_progress_says_seconds_of_music_and_the_step_detail_keeps_tokens():
    """Stage 1 at 120 of 300 tokens is 1.2 of at most 3.0 s of music on the page; the detail line keeps tokens."""
    from yue.song import Progress

    event = Progress("stage1", 0, 2, 120, 300, 40.0, 5.0)
    text = results.progress_text(event, 0, 2, 0.0, 12.0)
    assert text.startswith("Section 1/2: composing, 1.2 of at most 3.0 s of music, ") and "token" not in text
    assert results.step_detail(event) == "Section 1/2: stage1 120/300 tokens at 40.0 tokens/s"
    later = results.progress_text(Progress("stage2", 0, 2, 30, 120, 10.0, 3.0), 0, 2, 0.0, 12.0)
    assert later.startswith("Section 1/2: adding detail, 25%, ")


def test_page_messages_name_the_pages_fields_not_the_apis():
    """'(cut_seconds)' and the like are left out for the page; the rest of the message stays."""
    assert results.for_page("The cut time (cut_seconds) must be between 0.02 s and 1.0 s") == (
        "The cut time must be between 0.02 s and 1.0 s")
    assert results.for_page("Min tokens per section (min_new_tokens) must be at most Max tokens per section "
                            "(max_new_tokens)") == "Min tokens per section must be at most Max tokens per section"
    assert results.for_page("Keep (at least) 1 section") == "Keep (at least) 1 section"


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


def test_a_run_ended_inside_a_section_says_what_is_kept_and_how_to_go_on():
    """Stopped by ZeroGPU in stage 1 or in stage 2 of section 3 of 2 takes: the finished sections and the part of
    the section are in each take's bundle, and each take goes on with 1 take and its own seed; with nothing made,
    nothing is promised."""
    from space.results import ended_text
    from yue.lm.stage1 import SectionTokens, Stage1Partial
    from yue.lm.stage2 import Row, RowCodes
    from yue.song import Unfinished

    stage1 = Unfinished(2, stage1=Stage1Partial(2, 1350, (np.zeros(1350, np.int64),), (True,), (b"",), "cpu"))
    text = ended_text("ZeroGPU refused the next GPU call: no quota.", 2, 4, 60.0, stage1, 3000, [42, 43])
    assert text == ("ZeroGPU refused the next GPU call: no quota.\nKept in each take's song bundle (.npz): 2 of 4 "
                    "sections (60 s of audio) and the part of section 3 up to token 1350 of 3000 of stage 1.\nTo go on, "
                    "press Continue this song → (or upload the bundle in the Continue a song tab) when your quota is "
                    "back, with 1 take and its seed (take 1: seed 42, take 2: seed 43): section 3 resumes exactly "
                    "where it stopped.")
    done = SectionTokens(2, "verse", np.zeros(1500, np.int64), np.zeros(1500, np.int64), True)
    rows = tuple(RowCodes(Row(track, 0, 300), np.zeros((8, 120), np.int64)) for track in (0, 1))
    stage2 = Unfinished(2, sections=(done,), rows=rows)
    assert "section 3 with stage 1 done and 240 frames of stage 2" in ended_text("x", 2, 4, 60.0, stage2, 3000, [7])
    assert ended_text("x", 0, 4, 0.0, None, 3000, [7]).endswith("nothing to keep: try again when your quota is back.")
