"""YuE v1 lyrics-to-song inference: one pipeline over tokenizer, two LMs, codec and upsamplers.

    from yue import Pipeline, SongRequest
    pipeline = Pipeline.from_pretrained()              # official checkpoints (GPU); Pipeline.tiny(DIR) offline
    song = pipeline.generate(SongRequest("pop female bright vocal", open("lyrics.txt").read()))
"""
from .config import Limits, Sampling, Stage2Config
from .pipeline import Pipeline
from .song import Progress, Reference, Song, SongCodes, SongRequest
from .stage1 import Cancelled, Stage1Tokens

__all__ = ["Cancelled", "Limits", "Pipeline", "Progress", "Reference", "Sampling", "Song", "SongCodes", "SongRequest",
           "Stage1Tokens", "Stage2Config"]
