"""The Space: endpoints (studio) and widgets (Gradio), the model cache and one GPU call per section (serving), input
checks and jobs (jobs), the files and words a run shows (results), ZeroGPU bookings (gpu_time). Built on the `yue`
pipeline; `yue` never imports this package."""
