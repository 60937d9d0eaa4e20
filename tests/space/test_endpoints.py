"""space/endpoints.py without a server: how an endpoint's errors reach API callers (raised) and the page (one
progress text)."""
import gradio as gr
import pytest

from space.endpoints import endpoint, on_page, without_paths

GONE = "/tmp/gradio/0123abcd/reference-example.wav"


def failing(sections_made: int, error: Exception):
    """An endpoint that sends `sections_made` sections' outputs, then fails with `error`."""

    @endpoint
    def run():
        """Fails after some sections. {settings}"""
        for index in range(sections_made):
            yield "mix.wav", "vocal.wav", "instrumental.wav", f"song-{index + 1}.npz", f"Section {index + 1} done.", 42
        raise error

    return run


def test_api_callers_get_the_error_raised_without_server_paths():
    """An unexpected error before any section: a gr.Error naming it, without the server's folders and without
    claiming that sections were kept; the last update puts the same message in the progress text."""
    updates = []
    with pytest.raises(gr.Error) as error:
        for values in failing(0, FileNotFoundError(2, "No such file or directory", GONE))():
            updates.append(values)
    message = error.value.message
    assert message == ("Generation failed (FileNotFoundError: [Errno 2] No such file or directory: "
                       "'reference-example.wav').")
    assert updates[-1][4] == f"✗ {message}" and "/tmp" not in updates[-1][4]


def test_sections_are_said_to_be_kept_only_when_some_were_made():
    """After one finished section, the message says the sections before the error are kept in the outputs."""
    with pytest.raises(gr.Error, match="The sections finished before this are kept in the outputs"):
        list(failing(1, RuntimeError("CUDA out of memory"))())


def test_the_page_shows_an_error_once_in_the_progress_text_with_its_line_breaks():
    """The page's version raises nothing (no error mark on every output): its last update is the message in the
    progress text, line breaks kept, and leaves every other output as it was."""
    message = "Lyrics are empty. Write sections that each start with a tag, e.g.\n[verse]\nfirst line"
    updates = list(on_page(failing(1, ValueError(message)))())
    assert updates[-1][4] == f"✗ {message}"
    assert all(value == gr.skip() for index, value in enumerate(updates[-1]) if index != 4)
    assert updates[0][3] == "song-1.npz"  # what was made before stays sent


def test_the_continuation_page_also_sends_the_new_bundle_to_the_song_field():
    """copy_bundle: every update carries the bundle output twice (the second goes to the continuation's song field)."""
    updates = list(on_page(failing(2, ValueError("stop")), copy_bundle=True)())
    assert [values[6] for values in updates[:2]] == ["song-1.npz", "song-2.npz"] and updates[-1][6] == gr.skip()


def test_paths_become_file_names_and_urls_stay():
    assert without_paths(f"cannot open '{GONE}' or {GONE}") == (
        "cannot open 'reference-example.wav' or reference-example.wav")
    assert without_paths("see https://huggingface.co/m-a-p/YuE and a/b/c") == (
        "see https://huggingface.co/m-a-p/YuE and a/b/c")


def test_the_page_gets_the_whole_song_bar_and_the_details_last_and_api_callers_do_not():
    """An endpoint's output values carry the song's progress and the run's details: the page's version adds the bar
    (share done, time left) and the details as its last outputs, the API's six values stay six; an update without
    them leaves both as they are."""
    from space.results import Update
    from space.song_progress import SongState
    from space.endpoints import outputs

    @endpoint
    def run():
        """Two updates. {settings}"""
        yield outputs(Update("Section 1/2 …", 42, song=SongState(0.25, 75.0), details="stage1 10/300 tokens"))
        yield outputs(Update("Loading…"))

    # the third values: no section's files were made, so the API gets None for the four files (the page skips them)
    assert [len(values) for values in run()] == [6, 6, 6]
    first, second, closing = list(on_page(run)())
    assert "<progress value='0.250' max='1'>" in first[6] and "25% of the song · about 1 min 15 s left" in first[6]
    assert first[7] == "stage1 10/300 tokens" and second[7] == gr.skip()
    assert second[6] == gr.skip() and closing[:4] == (gr.skip(),) * 4 and closing[6] == gr.skip()


def test_the_bar_says_done_stopped_or_estimating():
    from space.song_progress import SongState
    from space.endpoints import song_bar

    assert "100% of the song · done" in song_bar(SongState(1.0, None, ended=True))
    assert "40% of the song · stopped" in song_bar(SongState(0.4, None, ended=True))
    assert "0% of the song · estimating the time left<" in song_bar(SongState(0.0, None))
    idle = song_bar(None)
    assert "No run yet" in idle and "<progress" not in idle  # no bar that reads as full before any run


def stopped_early():
    @endpoint
    def run():
        """Stopped before the first section. {settings}"""
        yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), "Section 1 of 2: stage1 …", 42
        yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), "Stopped before the first section was finished.", gr.skip()

    return run


def test_after_an_early_stop_api_callers_get_none_for_the_files_and_the_page_keeps_its_own():
    """Stopped before any section: the API's last values are None for the four files (they were
    {'__type__': 'update'}), with the last text and seed; the page's players keep what they show."""
    final = list(stopped_early()())[-1]
    assert final == (None, None, None, None, "Stopped before the first section was finished.", 42)
    page = list(on_page(stopped_early())())[-1]
    assert page[:4] == (gr.skip(),) * 4 and page[4].startswith("Stopped")


def test_the_page_shows_an_error_without_the_apis_field_names_and_api_callers_get_them():
    """A refused cut: API callers read '(cut_seconds)', the field they sent; the page's progress text names only the
    page's field ('The cut time must be …')."""
    refused = failing(0, ValueError("The cut time (cut_seconds) must be between 0.02 s and 1.0 s; got 0."))
    with pytest.raises(gr.Error, match=r"The cut time \(cut_seconds\) must be"):
        list(refused())
    assert list(on_page(refused)())[-1][4] == "✗ The cut time must be between 0.02 s and 1.0 s; got 0."
