"""The page's player for rows heard while a section is made (space/row_audio.py): each piece of take 1's mix comes as
an update of one HTML element, and the browser queues it right after the piece before on one Web Audio clock, so
the pieces play without gap while the song is made; the finished song then plays in the song's player as before.

Gradio 6.31's own streaming audio output encodes every chunk through an `ffmpeg` process; this player needs no
encoder: the piece's 16-bit .wav travels as a data URL (~235 kB per 2 s piece) and the browser decodes it. The
element records what it received (`data-pieces`, `data-seconds`, and the progress text when the first piece came:
`data-first-progress`), which the browser test reads.
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
const state = {audio: null, next: 0, seen: new Set(), pieces: 0, seconds: 0};
document.addEventListener('click', () => {
  state.audio = state.audio || new AudioContext();
  state.audio.resume();
}, {capture: true});
const play = async (piece) => {
  const key = piece.dataset.key;
  if (!key || state.seen.has(key)) return;
  state.seen.add(key);
  if (piece.dataset.start === '0') { state.next = 0; state.pieces = 0; state.seconds = 0; }  // a new run
  state.pieces += 1;
  state.seconds += Number(piece.dataset.frames) / 50;
  element.dataset.pieces = String(state.pieces);
  element.dataset.seconds = state.seconds.toFixed(2);
  if (state.pieces === 1) {
    const progress = document.querySelector('#progress textarea');
    element.dataset.firstProgress = progress ? progress.value : '';
  }
  try {
    state.audio = state.audio || new AudioContext();
    const bytes = await (await fetch(piece.dataset.src)).arrayBuffer();
    const buffer = await state.audio.decodeAudioData(bytes);
    const source = state.audio.createBufferSource();
    source.buffer = buffer;
    source.connect(state.audio.destination);
    const at = Math.max(state.next, state.audio.currentTime + 0.05);
    source.start(at);
    state.next = at + buffer.duration;
  } catch (error) {
    element.dataset.error = String(error);
  }
};
const scan = () => element.querySelectorAll('.yue-row').forEach(play);
new MutationObserver(scan).observe(element, {childList: true, subtree: true, attributes: true});
scan();
"""


def listen_box() -> gr.HTML:
    """The player: an element whose value is the newest piece (empty before a run)."""
    return gr.HTML("", js_on_load=PLAYER_JS, elem_id="listen", label="Listening while it is made", container=False)


def listen_value(row: RowHeard | None):
    """The player's next value: take 1's piece as a data URL in a span the player's script reads, or gr.skip()."""
    if row is None or row.take != 0:
        return gr.skip()
    path = Path(row.path)
    audio = base64.b64encode(path.read_bytes()).decode("ascii")
    key = hashlib.sha1(str(path).encode()).hexdigest()[:16]  # the piece's file, unique per run and piece
    return (f"<span class='yue-row' data-key='{key}' data-start='{row.start}' data-frames='{row.frames}' "
            f"data-src='data:audio/wav;base64,{audio}'>🎧 {(row.start + row.frames) / FRAME_RATE:.1f} s heard while it "
            "is made</span>")
