"""The app's process: a Gradio folder of its own per copy, the start-up flags read and checked before any model, page
or server, and an exit that skips the interpreter's slow teardown. Nothing here imports gradio or torch: app.py calls
`own_gradio_folder` before gradio is imported."""
import argparse
import atexit
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

from yue import checks


def own_gradio_folder() -> str:
    """A folder of this copy's own for Gradio's files (uploads, examples, the outputs it serves), made its
    GRADIO_TEMP_DIR and removed at exit. By default every copy shares <tmp>/gradio and names a file by its content,
    so a copy that stopped deleted files (the style example) of another that was still running. Inside an explicit
    GRADIO_TEMP_DIR when one is set. Call before gradio is imported: some of its modules read the variable then."""
    parent = os.environ.get("GRADIO_TEMP_DIR")
    if parent:
        os.makedirs(parent, exist_ok=True)
    folder, owner = tempfile.mkdtemp(prefix="yue-gradio-", dir=parent), os.getpid()
    # a forked worker (ZeroGPU's) inherits the exit hooks: only the process that made the folder removes it
    atexit.register(lambda: os.getpid() == owner and shutil.rmtree(folder, ignore_errors=True))
    os.environ["GRADIO_TEMP_DIR"] = folder
    return folder


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="YuE lyrics-to-song web app (a Hugging Face Space)")
    env_tiny = os.environ.get("YUE_TINY", "").lower() in ("1", "true", "yes")
    parser.add_argument("--tiny", metavar="DIR|auto", default="auto" if env_tiny else None,
                        help="tiny random checkpoints (offline; the output is noise); env YUE_TINY=1 = auto")
    parser.add_argument("--host", help="default 127.0.0.1 (or $GRADIO_SERVER_NAME)")
    parser.add_argument("--port", type=int, help="default 7860 (or $GRADIO_SERVER_PORT)")
    parser.add_argument("--share", action="store_true", help="a public gradio.live link (off by default)")
    parser.add_argument("--mcp", action=argparse.BooleanOptionalAction, default=True,
                        help="serve the endpoints as MCP tools too (default; needs gradio[mcp]): --no-mcp switches off")
    parser.add_argument("--outputs", type=Path, help="root of the per-request output folders")
    parser.add_argument("--device", help="cpu, cuda … (default: cuda when present)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="PyTorch CPU threads (default: $OMP_NUM_THREADS when set, else half the usable CPUs)")
    return parser.parse_args(argv)


PORTS = (1, 65535)
HOST = re.compile(r"[A-Za-z0-9_.:%-]{1,253}")  # a host name, an IPv4 or IPv6 address (with a zone), or 0.0.0.0


def check_start(args: argparse.Namespace, environ=os.environ) -> None:
    """Every start-up flag (and the variables standing in for them) at start-up, before any model, page or server:
    the port and host Gradio would bind (99999 was an OverflowError traceback), the outputs and tiny folders can be
    written, the thread count, the YUE_* settings, the device exists in this PyTorch, and --tiny (which runs on the
    CPU) is not given another device it would ignore."""
    from yue.files import writable_folder
    from yue.weights.devices import check_device, check_environment
    from yue.weights.threads import choose_threads, usable_cpus

    port, name = (args.port, "--port") if args.port is not None else (environ.get("GRADIO_SERVER_PORT"),
                                                                       "GRADIO_SERVER_PORT")
    if port is not None:
        checks.number(int(port) if str(port).strip().isdigit() else port, name, *PORTS, whole=True)  # env: text
    host, name = (args.host, "--host") if args.host is not None else (environ.get("GRADIO_SERVER_NAME"),
                                                                       "GRADIO_SERVER_NAME")
    if host is not None and not HOST.fullmatch(host):
        raise ValueError(f"{name} must be a host name or an address such as 127.0.0.1 or 0.0.0.0; got "
                         f"{checks.shown(host)}")
    if args.outputs is not None:
        writable_folder(args.outputs, f"--outputs {args.outputs}")
    if args.tiny not in (None, "auto"):
        writable_folder(args.tiny, f"--tiny {args.tiny}")
    choose_threads(args.threads, environ, usable_cpus())
    check_environment()
    if args.tiny and args.device not in (None, "cpu"):
        raise ValueError(f"--tiny runs on the cpu; --device {args.device} would be ignored: leave --device out")
    if args.device:
        check_device(args.device)


def stop_on_signals() -> threading.Event:
    """Ctrl-C (SIGINT) and a process manager's SIGTERM stop the app: the returned event is set, then a
    KeyboardInterrupt is raised in the main thread. `main` waits on the event, so a stop that came while a library
    swallowed the interrupt (Gradio's launch makes start-up requests through httpx) still ends the app."""
    stop = threading.Event()

    def stopping(signum, frame):
        stop.set()
        raise KeyboardInterrupt

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, stopping)
    return stop


def leave(code: int) -> None:
    """Exit once the server is closed: the exit hooks run (this copy's Gradio folder, Gradio's own), then the process
    ends without the interpreter's teardown of torch, transformers and gradio, which only frees memory and took
    4-7 s on a busy 2-core machine (a SIGTERM from a process manager then waited that long)."""
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
