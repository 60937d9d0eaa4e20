"""The page's look (Gradio layer): its CSS and the small scripts its events run in the browser."""

CSS = """
#tiny-banner {background: #fff3cd; border: 2px solid #e0a800; border-radius: 8px; padding: 0.5em 1em;}
#tiny-banner p {color: #5c4400; font-size: 1.1em; font-weight: 600; margin: 0;}
.status-ok {color: #1b7f3b;} .status-error {color: #b00020;}
.tag-picker .token, .tag-picker .token span, .tag-picker .options li {word-break: normal; overflow-wrap: normal;}
.song-bar {display: flex; align-items: center; gap: 0.75em;}
.song-bar progress {flex: 1; height: 0.9em; min-width: 5em; appearance: none; border: none; border-radius: 4px;
  background: #e5e7eb; overflow: hidden;}  /* empty reads as empty, not as a full grey bar */
.song-bar progress::-webkit-progress-bar {background: #e5e7eb;}
.song-bar progress::-webkit-progress-value {background: #1b7f3b;}
.song-bar progress::-moz-progress-bar {background: #1b7f3b;}
.song-bar.idle {color: #6b7280;}
/* the song's bar and Stop, fixed at the window's bottom: in view during a run at any width and scroll position */
#run-dock {position: fixed; left: 0; right: 0; bottom: 0; z-index: 1000; margin: 0; padding: 0.4em 1em;
  background: var(--background-fill-primary); border-top: 1px solid var(--border-color-primary);
  box-shadow: 0 -2px 8px rgba(0, 0, 0, 0.08); flex-wrap: nowrap; align-items: center;}
#run-dock > * {min-width: 0;}
.gradio-container {padding-bottom: 6em !important;} html {scroll-padding-bottom: 6em;}  /* not under the dock */
/* a file's whole name, wrapped at its dashes: a narrow column clipped it to ".npz" */
.file-preview .filename {display: block !important; overflow: visible !important;}
.file-preview .filename .stem, .file-preview .filename .ext {display: inline; white-space: normal !important;
  overflow: visible !important;}
"""
# The part of the page a history action changed is brought into view: it is above the history, out of sight
SHOW_TABS = "() => document.getElementById('song-tabs')?.scrollIntoView({block: 'start'})"
