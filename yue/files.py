"""Output files written whole or not at all, and output places checked before any work: a write error (a full
disk, a folder that vanished) leaves no partial or empty file behind, and a place that cannot be written is found
before any model is loaded, not after the run."""
from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path


def not_a_file(path) -> str:
    """Why `path` (a pathlib.Path) cannot be read as a file, in words: missing, a folder, or a device, pipe or socket
    (`/dev/zero` would be read forever). Call it when `path.is_file()` is false."""
    if not path.exists():
        return "file not found"
    return "is a folder" if path.is_dir() else "is not a regular file (a device, pipe or socket)"


@contextlib.contextmanager
def replacing(path: str | Path):
    """Yield a temporary path beside `path` (same folder, same suffix, so writers that choose a format by the suffix
    work); when the block ends without an error it replaces `path` in one step (os.replace), otherwise it is
    deleted and `path` is untouched."""
    path = Path(path)
    # a fresh name, not a file made here: the writer creates it with the usual permissions (mkstemp's are 0600)
    temporary = path.parent / f".{path.stem}.{secrets.token_hex(6)}.partial{path.suffix}"
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def utf8_name(path: str | Path, what: str) -> None:
    """Refuse a name with bytes that are not UTF-8 (from a shell in another encoding): the audio library cannot open
    it and it cannot be printed."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what}: the name holds bytes that are not UTF-8 text; choose a name typed in "
                         "UTF-8") from None


def writable_folder(folder: str | Path, what: str) -> None:
    """Raise ValueError (naming `what`, e.g. '--out song/') unless a file can be created in `folder` or, when it does
    not exist yet, in its nearest existing parent: the name must be UTF-8 text (other bytes fail in the audio
    library or when printed) and a probe file is created and deleted there (permission bits do not tell root,
    /proc or a read-only mount)."""
    folder = Path(folder)
    utf8_name(folder, what)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{what}: {existing} is not a folder; choose another place")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ValueError(f"{what}: cannot write in {existing} ({error.strerror or error}); choose another folder") \
            from None
