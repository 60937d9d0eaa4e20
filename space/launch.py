"""Serving the page: on ZeroGPU the default models loaded before launch (for spaces to pack them), and Gradio's
launch with the app's theme, CSS, upload limit, sessions kept and MCP server."""
from __future__ import annotations

import importlib.util
import logging
from typing import Callable

import gradio as gr

from yue.pipeline import Pipeline
from .gpu_time import on_zero_gpu
from .jobs import MAX_UPLOAD_MB, ModelChoice
from .store import SESSIONS_KEPT
from .style import CSS

log = logging.getLogger("yue.app")


def theme() -> gr.themes.Base:
    """Soft, with system fonts: the default Google fonts are fetched by the browser, which hangs offline."""
    return gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def mcp_server(wanted: bool) -> bool:
    """MCP is on unless switched off; without the extra installed the app still runs, and the log says how to add it."""
    if wanted and importlib.util.find_spec("mcp") is None:
        log.warning('MCP is off: the mcp package is missing; pip install "gradio[mcp]==6.31.*" (requirements.txt) '
                    "serves the endpoints as MCP tools too")
        return False
    return wanted


def launch(demo: gr.Blocks, host: str | None = None, port: int | None = None, share: bool = False,
           mcp: bool = True, **kwargs):
    """Launch with the app's theme, CSS and upload limit (host/port None: Gradio's defaults or its env vars), the
    state of the SESSIONS_KEPT sessions used last, and the endpoints as MCP tools at /gradio_api/mcp/ (streamable
    HTTP; /gradio_api/mcp/sse for SSE clients)."""
    return demo.launch(server_name=host, server_port=port, share=share, mcp_server=mcp_server(mcp),
                       theme=theme(), css=CSS, max_file_size=f"{MAX_UPLOAD_MB}mb", show_error=True,
                       state_session_capacity=SESSIONS_KEPT, **kwargs)


def preload(get_pipeline: Callable[[ModelChoice], Pipeline]) -> ModelChoice | None:
    """On ZeroGPU, load the default models (English, CoT, auto precision: ~19 GB in bf16) now, before launch, and
    return their choice; elsewhere nothing (models load on first use). Gradio's launch runs spaces' start-up first
    (spaces/zero/__init__.py `startup`, hooked by gradio.py `one_launch`): `torch.pack()` writes every CUDA tensor
    that exists then to disk and frees it (zero/torch/patching.py `pack`), and each fresh worker copies the pack to
    its GPU before a call's first line (`worker_init` -> `torch.move` -> packing.py `pack_to_cuda`). Models loaded
    after launch are not packed: each fresh worker would copy them from host memory instead."""
    if not on_zero_gpu():
        return None
    import spaces  # noqa: F401  (imported already by on_zero_gpu: its import is what patches torch for ZeroGPU)

    choice = ModelChoice()
    log.info("ZeroGPU: loading the default models before launch, for spaces to pack them")
    get_pipeline(choice)
    return choice
