"""Where weights come from: a local folder as is, or a Hub repo (pinned revision, only the needed files, the
standard cache, offline-aware), with errors that name the repo or folder and what to do."""
from __future__ import annotations

import errno
import json
import logging
import shutil
from pathlib import Path

from . import registry
from .registry import CODEC_FILES, Checkpoint

log = logging.getLogger(__name__)


class ModelLoadError(RuntimeError):
    """A part could not be found, downloaded or loaded; the message names the repo or folder and what to do."""


# -- files: a local folder, or a Hub snapshot in the standard cache ------------------------------------------------

def _looks_like_path(source: str) -> bool:
    """Hub ids are "owner/name"; anything with a leading /, ., ~ or more than one slash is meant as a folder."""
    return source.startswith(("/", ".", "~")) or "\\" in source or source.count("/") > 1


def _checkpoint(source, default: Checkpoint) -> Checkpoint:
    """None -> the registry's choice; a folder or Hub id -> that, with the same file list (pinned if we know it)."""
    if source is None:
        return default
    if isinstance(source, Checkpoint):
        return source
    return Checkpoint(str(source), registry.pinned_revision(str(source)), default.files)


def _cache_hint(cache_dir) -> str:
    from huggingface_hub import constants

    return str(cache_dir or constants.HF_HUB_CACHE)


def _download(ck: Checkpoint, cache_dir=None) -> Path:
    """snapshot_download of only `ck.files` at `ck.revision`, with every failure turned into a ModelLoadError."""
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, HFValidationError, IncompleteSnapshotError,
                                        LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError)

    at = f"{ck.repo}@{ck.revision or 'main'}"
    cache = _cache_hint(cache_dir)
    log.info("fetching %s (%s) into %s", at, ", ".join(ck.files) or "all files", cache)
    try:
        return Path(huggingface_hub.snapshot_download(ck.repo, revision=ck.revision, cache_dir=cache_dir,
                                                      allow_patterns=list(ck.files) or None))
    except RepositoryNotFoundError as e:
        if isinstance(e, GatedRepoError) or e.response is not None and e.response.status_code in (401, 403):
            raise _unauthorized(ck.repo) from e
        raise ModelLoadError(f"{ck.repo} was not found on the Hugging Face Hub (or it is private: set HF_TOKEN). "
                             "Check the id, or pass a local checkpoint folder instead.") from e
    except RevisionNotFoundError as e:
        raise ModelLoadError(f"{ck.repo} has no revision {ck.revision!r}: fix the pinned revision.") from e
    except HFValidationError as e:
        raise ModelLoadError(f"{ck.repo!r} is neither an existing folder nor a Hub repo id (owner/name).") from e
    except IncompleteSnapshotError as e:
        raise ModelLoadError(f"the cached copy of {at} in {cache} is incomplete (an interrupted download): run again "
                             "online to finish it (finished files are kept).") from e
    except LocalEntryNotFoundError as e:
        if constants.HF_HUB_OFFLINE:
            raise ModelLoadError(
                f"{at} is not in the Hugging Face cache ({cache}) and HF_HUB_OFFLINE=1 forbids downloading it: run "
                f"once online (or `hf download {ck.repo}`), point HF_HUB_CACHE at a cache that has it, or pass a local "
                "folder.") from e
        raise ModelLoadError(f"could not reach the Hugging Face Hub to download {at}, and it is not cached in {cache}: "
                             "check the network (or proxy), or pass a local folder.") from e
    except HfHubHTTPError as e:
        raise (_unauthorized(ck.repo) if e.response.status_code in (401, 403) else _interrupted(at, e)) from e
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise _interrupted(at, e) from e
        existing = next(p for p in (Path(cache), *Path(cache).parents) if p.exists())
        free = shutil.disk_usage(existing).free / 1e9
        raise ModelLoadError(f"disk full while downloading {at} into {cache} ({free:.1f} GB free): free space or set "
                             "HF_HUB_CACHE to a bigger disk, then run again (finished files are kept).") from e
    except Exception as e:  # connection dropped, timeout, server error mid-download
        raise _interrupted(at, e) from e


def _unauthorized(repo: str) -> ModelLoadError:
    return ModelLoadError(f"{repo} is gated or private and this machine may not download it: accept its terms on "
                          f"https://huggingface.co/{repo} and set HF_TOKEN (or run `hf auth login`).")


def _interrupted(at: str, error: Exception) -> ModelLoadError:
    return ModelLoadError(f"downloading {at} failed ({type(error).__name__}: {error}). Run again: finished files are "
                          "kept in the cache and the download resumes.")


def _missing_weights(folder: Path) -> list[str]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [s for s in shards if not (folder / s).is_file()]
    if any(folder.glob("*.safetensors")) or any(folder.glob("pytorch_model*.bin")):
        return []
    return ["model.safetensors (the weights)"]


def missing_files(folder: Path, kind: str) -> list[str]:
    """What a "stage1" (LM + tokenizer.model), "lm" or "codec" folder lacks."""
    if kind == "codec":
        return [f for f in CODEC_FILES if not (folder / f).is_file()]
    missing = [] if (folder / "config.json").is_file() else ["config.json"]
    missing += _missing_weights(folder)
    if kind == "stage1" and not (folder / "tokenizer.model").is_file():
        missing.append("tokenizer.model")
    return missing


LAYOUTS = {"stage1": ("stage-1",
                      "config.json, model*.safetensors and tokenizer.model (like m-a-p/YuE-s1-7B-anneal-en-cot)"),
           "lm": ("LM", "config.json and model*.safetensors (like m-a-p/YuE-s2-1B-general)"),
           "codec": ("codec", "the m-a-p/xcodec_mini_infer files " + ", ".join(CODEC_FILES))}


def fetch(ck: Checkpoint, kind: str | None = None, cache_dir=None) -> Path:
    """The folder of a checkpoint: a local folder as is, else its Hub snapshot (downloaded or cached). With `kind`
    ("stage1", "lm", "codec"), raise ModelLoadError if files are missing."""
    path = Path(ck.repo).expanduser()
    if path.is_file():
        raise ModelLoadError(f"{ck.repo} is a file; give a checkpoint folder or a Hub repo id.")
    if not path.is_dir() and _looks_like_path(ck.repo):
        raise ModelLoadError(f"checkpoint folder not found: {path}")
    local = path.is_dir()
    folder = path if local else _download(ck, cache_dir)
    missing = missing_files(folder, kind) if kind else []
    if kind == "stage1" and missing == ["tokenizer.model"] and ck.tokenizer_repo:
        missing = []  # a community export without the tokenizer: it comes from the official repo (`_tokenizer`)
    if missing:
        name, layout = LAYOUTS[kind]
        where = str(folder) if local else f"{ck.repo}@{ck.revision or 'main'} ({folder})"
        hint = (f"A {name} checkpoint folder holds {layout}." if local else
                "The download was interrupted or the repo lacks them: run again online (finished files are kept).")
        raise ModelLoadError(f"{where} is missing {', '.join(missing)}. {hint}")
    return folder


def resolve(source: str | Path, allow_patterns=None, cache_dir=None) -> Path:
    """A local folder as is; anything else is a Hub repo id, downloaded (or taken from the cache when offline)."""
    return fetch(Checkpoint(str(source), registry.pinned_revision(str(source)), tuple(allow_patterns or ())),
                 cache_dir=cache_dir)
