"""torchao's start-up lines, kept off the console: importing it (transformers does, whatever the precision) logs a
warning for each of its prebuilt kernel libraries that cannot load here (built for another Python or GPU:
"Failed to load …/torchao/_C_mxfp8.cpython-310-….so: Could not load this library"), and PyTorch logs one for each
enum torchao registers ("<enum 'KernelPreference'> is an Enum subclass and is now natively supported …"). Neither
is an error: the kernels are optional, and a precision that needs one says so when it is asked for.

`import_torchao_quietly` imports torchao once, early (and transformers' quantizers, which import more of it), with a
filter on exactly those two loggers for exactly those messages; they go to yue's own log at debug level. Every other record of those loggers, and every record after the
import, passes as before. Imports nothing heavy at module level (the CLI's `--help` stays fast).
"""
from __future__ import annotations

import importlib.util
import logging
import re
import sys

log = logging.getLogger("yue.weights")

# (logger, message) torchao's import produces on a machine without its optional kernels
IMPORT_NOISE = (
    ("torchao", re.compile(r"Failed to load \S*torchao[/\\]_C\w*\S*\.so: ")),
    ("torch.utils._pytree", re.compile(r"<enum '\w+'> is an Enum subclass and is now natively supported by "
                                       r"torch\.compile as an opaque value type")),
)


class Moved(logging.Filter):
    """Drops a logger's records whose message matches `pattern`, logging each again at debug level in yue's log."""

    def __init__(self, pattern: re.Pattern):
        super().__init__()
        self.pattern = pattern

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.pattern.search(message):
            log.debug("%s: %s", record.name, message)
            return False
        return True


def import_torchao_quietly() -> None:
    """Import torchao, when it is installed and not imported yet, without its start-up lines on the console (see
    the module's docstring). Call it first thing in a program, before transformers is imported."""
    if "torchao" in sys.modules or importlib.util.find_spec("torchao") is None:
        return
    filters = [(logging.getLogger(name), Moved(pattern)) for name, pattern in IMPORT_NOISE]
    for logger, moved in filters:
        logger.addFilter(moved)
    try:
        import torchao  # noqa: F401
        import transformers.quantizers  # noqa: F401  (it imports more of torchao, with more enum lines)
    except ImportError:  # a broken install: the precisions that need it say so when asked for (quantize._torchao)
        pass
    finally:
        for logger, moved in filters:
            logger.removeFilter(moved)
