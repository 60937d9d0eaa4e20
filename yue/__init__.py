"""YuE v1 lyrics-to-song inference: one pipeline over tokenizer, two LMs, codec and upsamplers.

    from yue import Pipeline, SongRequest
    pipeline = Pipeline.from_pretrained()              # official checkpoints (GPU); Pipeline.tiny(DIR) offline
    song = pipeline.generate(SongRequest("pop female bright vocal", open("lyrics.txt").read()))

The public names are imported on first use (PEP 562), so `import yue` and `python -m yue --help` do not load torch
and transformers; `from yue import Pipeline` imports the pipeline then (torchao first, without its start-up lines:
weights/console.py).
"""
from importlib import import_module

# public name -> the module that defines it
_WHERE = {"Limits": "config", "Sampling": "config", "Stage2Config": "config", "Pipeline": "pipeline",
          "Progress": "song", "Reference": "song", "Song": "song", "SongCodes": "song", "SongRequest": "song",
          "Cancelled": "lm.stage1", "Stage1Tokens": "lm.stage1", "Deadline": "lm.deadline", "OutOfTime": "lm.deadline",
          "Unfinished": "song", "RowAudio": "rows"}

__all__ = ["Cancelled", "Deadline", "Limits", "OutOfTime", "Pipeline", "Progress", "Reference", "RowAudio", "Sampling",
           "Song", "SongCodes", "SongRequest", "Stage1Tokens", "Stage2Config", "Unfinished"]


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'yue' has no attribute {name!r}")
    from .weights.console import import_torchao_quietly

    import_torchao_quietly()  # before the name's module imports transformers: torchao's start-up lines off stderr
    value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
