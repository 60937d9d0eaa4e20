"""The page's player for rows heard while a section is made (space/row_audio.py): each piece of every take's mix
comes as an update of one HTML element, and the browser queues it right after its take's piece before on the take's
own lane of one Web Audio clock, so the pieces play without gap while the song is made; the finished song then plays
in the song's players as before. Every take plays along; one is heard (take 1 first): with several takes a button
per take ("Take 2: 12.0 s") chooses which, at once, at the same point of the song (the takes are made together).

Gradio 6.31's own streaming audio output encodes every chunk through an `ffmpeg` process; this player needs no
encoder: the piece's 16-bit .wav travels as a data URL (~235 kB per 2 s piece) and the browser decodes it. The
element records what it received (`data-pieces`: every take's pieces, `data-seconds`: each take's seconds, space
separated, `data-scheduled`: pieces decoded and queued, and the progress text when the first piece came:
`data-first-progress`), which the browser tests read.
"""
from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import gradio as gr

from .row_audio import RowHeard
from yue.rates import FRAME_RATE

# Runs once when the element loads: a MutationObserver sees each new piece; an AudioContext made on the first click
# (browsers start audio only after a gesture, and Generate is one) schedules each piece at the end of the one before.
PLAYER_JS = """
const state = {audio: null, chosen: 0, takes: [], pieces: 0, seen: new Set(), bar: document.createElement('div')};
state.bar.className = 'yue-takes';
document.addEventListener('click', () => {
  state.audio = state.audio || new AudioContext();
  state.audio.resume();
}, {capture: true});
const lane = (take) => {  // a take's own clock and volume: every take plays, only the chosen one is heard
  state.audio = state.audio || new AudioContext();
  const gain = state.audio.createGain();
  gain.gain.value = take === state.chosen ? 1 : 0;
  gain.connect(state.audio.destination);
  return {next: 0, seconds: 0, gain};
};
const show = () => {  // a button per take (several takes only); the element's data records what each received
  element.dataset.pieces = String(state.pieces);
  element.dataset.seconds = state.takes.map((take) => take ? take.seconds.toFixed(2) : '0.00').join(' ');
  state.bar.replaceChildren(...(state.takes.length < 2 ? [] : state.takes.map((take, index) => {
    const button = document.createElement('button');
    button.className = 'yue-take' + (index === state.chosen ? ' chosen' : '');
    button.dataset.take = String(index);
    const seconds = take ? take.seconds.toFixed(1) : 0;
    button.textContent = `${index === state.chosen ? '🎧' : '▶'} Take ${index + 1}: ${seconds} s`;
    button.onclick = () => {
      state.chosen = index;
      state.takes.forEach((other, at) => { if (other) other.gain.gain.value = at === index ? 1 : 0; });
      show();
    };
    return button;
  })));
  if (!element.contains(state.bar)) element.prepend(state.bar);
};
const play = async (piece) => {
  const key = piece.dataset.key;
  if (!key || state.seen.has(key)) return;
  state.seen.add(key);
  const take = Number(piece.dataset.take);
  if (piece.dataset.start === '0') {  // a new run: take 1 starts every take afresh, another take itself
    if (take === 0) { state.takes.forEach((old) => old && old.gain.disconnect()); state.takes = []; state.pieces = 0; }
    else if (state.takes[take]) { state.takes[take].gain.disconnect(); state.takes[take] = null; }
  }
  const own = state.takes[take] = state.takes[take] || lane(take);
  state.pieces += 1;
  own.seconds += Number(piece.dataset.frames) / 50;
  if (state.pieces === 1) {
    const progress = document.querySelector('#progress textarea');
    element.dataset.firstProgress = progress ? progress.value : '';
  }
  show();
  try {
    const bytes = await (await fetch(piece.dataset.src)).arrayBuffer();
    const buffer = await state.audio.decodeAudioData(bytes);
    const source = state.audio.createBufferSource();
    source.buffer = buffer;
    source.connect(own.gain);
    const at = Math.max(own.next, state.audio.currentTime + 0.05);
    source.start(at);
    own.next = at + buffer.duration;
    element.dataset.scheduled = String(Number(element.dataset.scheduled || 0) + 1);  // decoded and queued
  } catch (error) {
    element.dataset.error = String(error);
  }
};
const scan = () => {
  element.querySelectorAll('.yue-row').forEach(play);
  if (state.takes.length && !element.contains(state.bar)) element.prepend(state.bar);  // a new value re-renders
};
new MutationObserver(scan).observe(element, {childList: true, subtree: true, attributes: true});
scan();
"""


def listen_box() -> gr.HTML:
    """The player: an element whose value is the newest piece (empty before a run)."""
    return gr.HTML("", js_on_load=PLAYER_JS, elem_id="listen", label="Listening while it is made", container=False)


def listen_value(row: RowHeard | None):
    """The player's next value: the piece (of any take) as a data URL in a span the player's script reads, or
    gr.skip()."""
    if row is None:
        return gr.skip()
    path = Path(row.path)
    audio = base64.b64encode(path.read_bytes()).decode("ascii")
    key = hashlib.sha1(str(path).encode()).hexdigest()[:16]  # the piece's file, unique per run and piece
    return (f"<span class='yue-row' data-key='{key}' data-take='{row.take}' data-start='{row.start}' "
            f"data-frames='{row.frames}' data-src='data:audio/wav;base64,{audio}'>Take {row.take + 1}: "
            f"{(row.start + row.frames) / FRAME_RATE:.1f} s made so far</span>")


def rows_endpoint(rows) -> None:
    """`/rows` for gradio_client callers (`Studio.rows`): the pieces heard so far in the session's run, as files
    and a table. Undocumented like /takes and /stop (keyed by the session: MCP callers would share one), not queued:
    it answers while the session's run holds the queue."""
    gr.Button(visible=False).click(rows, gr.Number(0, precision=0, visible=False),
                                   [gr.File(file_count="multiple", visible=False), gr.JSON(visible=False)],
                                   api_name="rows", queue=False, api_visibility="undocumented")
