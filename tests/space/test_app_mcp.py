"""The app's MCP server: on by default, three described tools, a real MCP client makes and continues a song."""
import re

from .helpers import LYRICS, SMALL, download


def test_mcp_is_on_by_default_and_the_app_runs_without_the_extra(monkeypatch, caplog):
    """--mcp is the default (--no-mcp switches it off); without the mcp package the app still starts, without MCP,
    and the log says what to install."""
    import importlib.util

    import app
    from space.launch import mcp_server

    assert app.parse_args([]).mcp is True and app.parse_args(["--no-mcp"]).mcp is False
    assert mcp_server(True) is (importlib.util.find_spec("mcp") is not None) and mcp_server(False) is False
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mcp" else find_spec(name, *a))
    assert mcp_server(True) is False
    assert 'MCP is off: the mcp package is missing; pip install "gradio[mcp]==6.31.*"' in caplog.text


def mcp_session(url: str, work, transport: str = "http"):
    """Runs `work(session)` in a real MCP client session (the `mcp` package) with the app's MCP server."""
    import asyncio

    from mcp import ClientSession
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import streamable_http_client

    async def run():
        connect = (streamable_http_client(url + "gradio_api/mcp/") if transport == "http"
                   else sse_client(url + "gradio_api/mcp/sse"))
        async with connect as streams:
            async with ClientSession(*streams[:2]) as session:
                await session.initialize()
                return await work(session)

    return asyncio.run(run())


def test_mcp_lists_the_three_endpoints_as_described_tools(server):
    """Over streamable HTTP and SSE the tools are the three endpoints (not /stop or the page's helpers), each with
    a description and every parameter described, so an assistant can call them without the API page."""

    async def tools(session):
        return (await session.list_tools()).tools

    for transport in ("http", "sse"):
        listed = {tool.name: tool for tool in mcp_session(server[0], tools, transport)}
        assert sorted(listed) == ["continue_song", "lyrics_to_song", "style_transfer"]
    assert listed["lyrics_to_song"].description.startswith("Make a song (sung vocals and accompaniment")
    assert "give it to continue_song to continue this song exactly" in listed["lyrics_to_song"].description
    for tool in listed.values():  # Gradio joins the Returns lines with ", ": no ".," and no line cut mid-sentence
        assert "., " not in tool.description and "the, " not in tool.description, tool.description
        assert "2**53" not in tool.description
    for tool in listed.values():
        properties = tool.inputSchema["properties"]
        assert {"genres", "lyrics", "sections", "seed"} <= set(properties)
        assert not [name for name, schema in properties.items() if not schema.get("description")], tool.name
    seed = listed["continue_song"].inputSchema["properties"]["seed"]["description"]
    assert seed.endswith("used as given unless random_seed is true (the seed is returned).")
    for tool in listed.values():  # the listening switch, described, on unless the assistant turns it off
        listen = tool.inputSchema["properties"]["listen"]
        assert listen["default"] is True and "more GPU time" in listen["description"], tool.name


def test_mcp_client_makes_a_song_and_continues_it(server):
    """A real MCP client calls lyrics_to_song (with progress notifications: one content per output, files as URLs)
    and continues the song from its bundle with continue_song (without progress: Gradio answers with one text
    holding every output); the bundle goes as a data: URI, since Gradio fetches no URL of a private address such as
    127.0.0.1. A bad input comes back as the app's message."""
    import base64
    from yue.song import SongCodes

    progress = []

    async def on_progress(done, total, message):
        progress.append(message)

    async def work(session):
        made = await session.call_tool("lyrics_to_song", {"genres": "pop piano", "lyrics": LYRICS, **SMALL},
                                       progress_callback=on_progress)
        bundle = download(made.content[3].text, server[1] / "mcp-first.npz")
        data = "data:application/zip;base64," + base64.b64encode(bundle.read_bytes()).decode()
        longer = await session.call_tool("continue_song", {
            "bundle": data, "genres": "pop piano", "lyrics": LYRICS + "\n[outro]\nbye\n",
            **{**SMALL, "sections": 1}})
        refused = await session.call_tool("lyrics_to_song", {"genres": "pop", "lyrics": "[verse]\nla <EOA>\n"})
        return made, longer, refused

    made, longer, refused = mcp_session(server[0], work)
    assert not made.isError and [c.text.rsplit(".", 1)[-1] for c in made.content[:4]] == ["wav", "wav", "wav", "npz"]
    assert made.content[3].text.startswith(server[0] + "gradio_api/file=")
    assert made.content[4].text.startswith("Done: 2 of 2 sections") and made.content[5].text == "42"
    assert "Processing" in progress
    assert not longer.isError and "'Done: 3 of 3 sections" in longer.content[0].text, longer.content
    first = SongCodes.load(server[1] / "mcp-first.npz")[0]
    url = re.search(r"'url': '([^']+/song-3of3\.npz)'", longer.content[0].text).group(1)
    continued = SongCodes.load(download(url, server[1] / "mcp-longer.npz"))[0]
    assert continued.stage1.section_frames[:2] == first.stage1.section_frames  # the two sections kept as made
    assert refused.isError and "Lyrics hold '<EOA>' on line 2" in refused.content[0].text


def test_listen_is_the_last_api_parameter_and_callers_that_leave_it_out_still_work(server, client):
    """Each endpoint's API lists `listen` last, a boolean with default True, after `takes` (continue_song's page-only
    last_song is no API input): every parameter before it keeps its position. A gradio_client caller that passes the
    16 earlier values by position (as before `listen` existed) gets its song, listened to."""
    import json
    import urllib.request

    info = json.load(urllib.request.urlopen(server[0] + "gradio_api/info"))
    for name in ("/lyrics_to_song", "/style_transfer", "/continue_song"):
        parameters = info["named_endpoints"][name]["parameters"]
        assert [p["parameter_name"] for p in parameters[-2:]] == ["takes", "listen"], name
        assert parameters[-1]["parameter_has_default"] and parameters[-1]["parameter_default"] is True
    lyrics_api = [p["parameter_name"] for p in info["named_endpoints"]["/lyrics_to_song"]["parameters"]]
    assert lyrics_api[:2] == ["genres", "lyrics"] and lyrics_api[2:-2] == list(SMALL)
    *_, summary, seed = client.predict("pop piano", LYRICS, *{**SMALL, "sections": 1}.values(), 1,
                                       api_name="/lyrics_to_song")
    assert summary.startswith("Done: 1 of 1 sections") and seed == 42


def test_genres_and_lyrics_are_required_with_no_default(server):
    """lyrics_to_song with lyrics omitted sang the example lyrics (the page box's text was the schema's default): in
    the API and MCP schemas genres and lyrics have no default and MCP lists them as required."""
    import json
    import urllib.request

    info = json.load(urllib.request.urlopen(server[0] + "gradio_api/info"))
    for name in ("/lyrics_to_song", "/style_transfer", "/continue_song"):
        parameters = {p["parameter_name"]: p for p in info["named_endpoints"][name]["parameters"]}
        assert not parameters["lyrics"]["parameter_has_default"] and not parameters["genres"]["parameter_has_default"]
        assert parameters["sections"]["parameter_has_default"]

    async def tools(session):
        return (await session.list_tools()).tools

    listed = {tool.name: tool for tool in mcp_session(server[0], tools)}
    for tool in listed.values():
        assert {"genres", "lyrics"} <= set(tool.inputSchema.get("required", [])), tool.name
        assert "default" not in tool.inputSchema["properties"]["lyrics"]
