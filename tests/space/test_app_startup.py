"""app.py's start-up on ZeroGPU: the default models are loaded before launch, so spaces packs them (a fresh worker
copies the pack to its GPU before a call's first line) and the service knows which models its calls run."""
import signal

import pytest


def test_on_zero_gpu_the_default_models_load_before_launch(monkeypatch, tmp_path):
    """On ZeroGPU `main` loads ModelChoice() through the model cache before Gradio's launch (which runs spaces'
    start-up: the pack), and the service's calls count those models as served; off ZeroGPU nothing loads early."""
    import app
    from space import gpu_time, launch as space_launch
    from space.jobs import ModelChoice

    events = []

    def pipelines(cache, tiny, device):
        return lambda choice: events.append(("load", choice))

    def launch(demo, *args, **kwargs):
        events.append(("launch", demo.served))

    def build_demo(get_pipeline, **kwargs):
        events.append(("build", kwargs["served"]))
        return type("Demo", (), {"served": kwargs["served"], "close": lambda self: None, "is_running": False})()

    monkeypatch.setattr(app, "pipelines", pipelines)
    monkeypatch.setattr(app, "build_demo", build_demo)
    monkeypatch.setattr(app, "launch", launch)
    monkeypatch.setattr(app, "tiny_folder", lambda value: tmp_path)
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # the test process keeps its own handlers
    for zero_gpu in (False, True):
        events.clear()
        monkeypatch.setattr(gpu_time, "on_zero_gpu", lambda: zero_gpu)
        monkeypatch.setattr(app, "on_zero_gpu", lambda: zero_gpu)
        monkeypatch.setattr(space_launch, "on_zero_gpu", lambda: zero_gpu)  # preload's
        assert app.main(["--tiny", str(tmp_path), "--threads", "1"]) == 0
        choice = ModelChoice() if zero_gpu else None
        assert events == ([("load", choice)] if zero_gpu else []) + [("build", choice), ("launch", choice)]


@pytest.mark.parametrize("served", [None, "default"])
def test_the_demo_tells_its_service_which_models_were_loaded_before_launch(served, tmp_path):
    """build_demo(served=...) reaches the service whose runs book the GPU calls (a run of other models adds the
    load allowance to its first call: tests/space/test_serving_calls.py)."""
    import app
    from space.jobs import ModelChoice

    choice = ModelChoice() if served else None
    demo = app.build_demo(lambda choice: None, output_root=tmp_path, tiny=True, served=choice)
    try:
        studios = {fn.__self__ for fn in (block.fn for block in demo.fns.values()) if hasattr(fn, "__self__")}
        assert [studio.service.served for studio in studios if hasattr(studio, "service")] == [choice]
    finally:
        demo.close()
