"""The Space: endpoints (studio) and widgets (Gradio), the GPU calls that stop at their deadline (serving), output
folders, stop flags and the pipelines over the one model cache (store), input checks and jobs (jobs), the files and
words a run shows (results), the whole song's progress (song_progress), one row per take (take_rows), the song history
kept in the browser (history, history_panel), ZeroGPU bookings (gpu_time), the app's start-up flags, Gradio folder and
exit (startup) and its launch (launch). Built on the `yue` pipeline; `yue` never imports this package."""
