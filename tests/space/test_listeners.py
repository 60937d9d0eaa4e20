"""space/listeners.py against Gradio's real queue: a run nobody listens for is dropped when its turn comes, before
any model work; and why Stop and /takes stay keyed by the session hash (Gradio's own bearer of a session)."""
import json
import uuid

import httpx

from .helpers import LYRICS, SMALL, song

DATA = ["pop", LYRICS, *{**SMALL, "sections": 1}.values(), 1, True]  # /lyrics_to_song's 17 inputs, one section


def song_folders(root) -> set:
    return set((root / "outputs").glob("song-*"))


def test_runs_whose_client_never_listens_are_dropped_before_they_start(server, client):
    """Weak answer 10: 17 of 20 runs whose clients never opened their event streams ran, and a real user waited 45 s
    behind them. Three such runs (Gradio's /call POST without its GET) are dropped when their turn comes, no output
    folder made; the real client queued behind them gets its song."""
    url, root = server
    before = song_folders(root)
    for _ in range(3):
        posted = httpx.post(url + "gradio_api/call/lyrics_to_song", json={"data": DATA}, timeout=30)
        assert posted.status_code == 200 and posted.json()["event_id"]
    *_, bundle, summary, seed = song(client, sections=1)
    assert summary.startswith("Done: 1 of 1 sections")
    assert len(song_folders(root) - before) == 1  # only the run someone listened for made anything


def fn_index(url: str, api_name: str) -> int:
    config = httpx.get(url + "config", timeout=30).json()
    return next(dependency["id"] for dependency in config["dependencies"]
                if dependency.get("api_name") == api_name)


def test_a_session_hash_is_the_key_of_its_session_in_gradio_itself(server):
    """Weak answer 8, why Stop and /takes stay keyed by the session hash: in Gradio 6.31 the hash a client sends is
    the only key of its session. A second client that sends a run's hash reads that run's whole event stream
    (outputs, summary, the files' URLs) through Gradio's own /queue/data, as it can cancel it through /cancel. Any
    key of ours would reach the page through that same stream, so it could guard nothing the hash does not: Stop
    and /takes ask for the run's own hash, random and never shown (the page's is drawn by its script,
    gradio_client's is a UUID4), and answer for that hash only."""
    url, _ = server
    owner = f"owner-{uuid.uuid4().hex}"
    body = {"data": DATA, "fn_index": fn_index(url, "lyrics_to_song"), "session_hash": owner}
    assert httpx.post(url + "gradio_api/queue/join", json=body, timeout=30).status_code == 200
    completed = None
    with httpx.stream("GET", url + "gradio_api/queue/data", params={"session_hash": owner}, timeout=300) as stream:
        for line in stream.iter_lines():  # a stranger, with nothing of the owner's but the hash
            message = json.loads(line[len("data: "):]) if line.startswith("data: ") else {}
            if message.get("msg") == "process_completed":
                completed = message
                break
    assert completed is not None and completed["success"]
    summary = completed["output"]["data"][4]
    assert summary.startswith("Done: 1 of 1 sections")
