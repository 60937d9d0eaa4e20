"""/rows over gradio_client: while a run goes on, the caller gets the audio heard so far, piece by piece, as .wav
files with a table (take, section, start, seconds), and only the new pieces when it passes how many it has."""
import time

import soundfile

from yue.rates import FRAME_RATE, OUTPUT_HOP

from .helpers import LYRICS, SMALL, has_codec

POLL_S = 0.3  # between two /rows calls: not a timing assertion, only to leave the 2 cores to the run


def test_rows_give_the_pieces_heard_so_far_while_the_run_goes_on(client):
    """One section of 700 stage-1 tokens (a 6 s row and a bit) with /rows polled while it runs: pieces come before
    the run ends, each a .wav of its frames (take 1, section 1, starts adding up); asking from piece n gives pieces
    n on; after the run /rows is empty (the song is in the outputs then, the pieces' files are gone)."""
    import pytest

    if not has_codec():
        pytest.skip("rows are audio: needs the codec")
    assert client.predict(0, api_name="/rows") == ([], [])  # before a run
    job = client.submit(**{"genres": "pop piano uplifting", "lyrics": LYRICS, **SMALL, "sections": 1,
                           "max_new_tokens": 700, "min_new_tokens": 680}, api_name="/lyrics_to_song")
    files, table = [], []
    while not job.done() and not files:
        files, table = client.predict(0, api_name="/rows")
        time.sleep(POLL_S)
    assert files, "no piece came while the run went on"
    assert table[0]["piece"] == 0 and table[0]["take"] == 1 and table[0]["section"] == 1
    assert table[0]["start_s"] == 0.0 and table[0]["seconds"] > 0
    samples, rate = soundfile.read(files[0], dtype="float32")
    assert rate == 44100 and len(samples) == round(table[0]["seconds"] * FRAME_RATE) * OUTPUT_HOP
    for before, after in zip(table, table[1:]):
        assert after["start_s"] == before["start_s"] + before["seconds"]
    later, later_table = client.predict(len(table), api_name="/rows")
    assert all(row["piece"] >= len(table) for row in later_table) and len(later) == len(later_table)
    *_, summary, _ = job.result()
    assert summary.startswith("Done: 1 of 1")
    assert client.predict(0, api_name="/rows") == ([], [])
