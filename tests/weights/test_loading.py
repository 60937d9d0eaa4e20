"""yue.weights.loading: local folders and a real Hub cache layout (offline), bitsandbytes int8/nf4 on the CPU, errors a
user can act on, parts moved for their stage (offload) and the app's model cache."""
import errno
import gc
import hashlib
import os
import shutil
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch

from yue import Pipeline
from yue.weights import loading, registry
from yue.lm import stage2
from yue.config import Sampling, Stage2Config
from yue.weights.loading import ModelCache, ModelLoadError, Models, fetch, load_lm, load_models
from yue.text.prompt import build_prompt, parse_lyrics
from yue.weights.registry import Checkpoint
from yue.lm.stage1 import generate_sections

S1_EN_COT, S1_EN_ICL = "m-a-p/YuE-s1-7B-anneal-en-cot", "m-a-p/YuE-s1-7B-anneal-en-icl"
S1_INT8 = "Alissonerdx/YuE-s1-7B-anneal-en-cot-int8"


def put_in_hub_cache(cache: Path, repo: str, files: dict[str, Path | bytes], commit: str | None = None,
                     ref: str | None = "main") -> Path:
    """Lay files out as huggingface_hub does: blobs named by content hash, snapshots/<commit>/ symlinks, refs/main."""
    commit = commit or hashlib.sha1(repo.encode()).hexdigest()
    storage = cache / ("models--" + repo.replace("/", "--"))
    snapshot = storage / "snapshots" / commit
    for name, content in files.items():
        data = content.read_bytes() if isinstance(content, Path) else content
        blob = storage / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    if ref:
        (storage / "refs").mkdir(parents=True, exist_ok=True)
        (storage / "refs" / ref).write_text(commit)
    return snapshot


def folder_files(folder: Path, skip=()) -> dict[str, Path]:
    return {p.name: p for p in folder.iterdir() if p.is_file() and p.name not in skip}


@pytest.fixture(scope="module")
def int8_export(tiny_lm_dir, tmp_path_factory) -> Path:
    """The tiny stage 1 saved already quantized to int8, without tokenizer.model (like a community export)."""
    folder = tmp_path_factory.mktemp("int8_export")
    load_lm(tiny_lm_dir / "s1", precision="bnb-int8").save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def hub_cache(tiny_lm_dir, int8_export, tmp_path_factory) -> Path:
    """A Hugging Face cache holding the tiny LMs under the official repo ids, an int8 export and codec files."""
    cache = tmp_path_factory.mktemp("hub")
    for repo in (S1_EN_COT, S1_EN_ICL):
        put_in_hub_cache(cache, repo, folder_files(tiny_lm_dir / "s1"))
    put_in_hub_cache(cache, registry.STAGE2_REPO, folder_files(tiny_lm_dir / "s2"))
    put_in_hub_cache(cache, S1_INT8, folder_files(int8_export))
    codec = {name: f"placeholder {name}".encode() for name in registry.CODEC_FILES}
    put_in_hub_cache(cache, registry.CODEC_REPO, codec, commit=registry.CODEC_REVISION, ref=None)
    return cache


@pytest.fixture(scope="module")
def song_prompt(tiny_tokenizer):
    return build_prompt(tiny_tokenizer, "pop", parse_lyrics("[verse]\nhello\n\n[chorus]\nla la").sections)


def same_weights(a, b) -> bool:
    return torch.equal(a.model.embed_tokens.weight, b.model.embed_tokens.weight)


# -- local folders and the Hub cache ---------------------------------------------------------------------------------

def test_local_folders_load_in_fp32_with_sdpa_on_cpu(tiny_lm_dir):
    """Explicit folders load as given; on CPU "auto" means fp32, nothing is offloaded, and the report says so."""
    pipeline = Pipeline.from_pretrained(stage1=tiny_lm_dir / "s1", stage2=tiny_lm_dir / "s2", codec=False, device="cpu")
    models = pipeline.models
    assert models.stage1.dtype == models.stage2.dtype == torch.float32
    assert models.stage1.config._attn_implementation == "sdpa"
    assert models.report.precision == ("fp32", "fp32") and not models.offload
    assert models.report.stage1 == str(tiny_lm_dir / "s1") and models.report.codec is None
    assert "fp32" in models.report.summary() and models.peak_memory() > 0


def test_official_ids_load_from_the_hub_cache_offline(hub_cache, stage1_model):
    """With no sources given, the registry's repo ids go through the real snapshot_download, served from the cache."""
    models = load_models(codec=False, cache_dir=hub_cache, device="cpu")
    assert models.report.stage1 == f"{S1_EN_COT}@main" and models.report.stage2 == f"{registry.STAGE2_REPO}@main"
    assert same_weights(models.stage1, stage1_model)
    assert models.tokenizer.vocab_size > 83000


def test_codec_comes_from_its_pinned_revision(hub_cache, tmp_path):
    """The codec snapshot is the pinned commit; a cache with only another commit of main does not satisfy it."""
    folder = fetch(registry.codec_checkpoint(), "codec", hub_cache)
    assert folder.name == registry.CODEC_REVISION and (folder / "final_ckpt/ckpt_00360000.pth").is_file()
    codec = {name: b"x" for name in registry.CODEC_FILES}
    put_in_hub_cache(tmp_path, registry.CODEC_REPO, codec, commit="0" * 40)
    with pytest.raises(ModelLoadError, match=f"m-a-p/xcodec_mini_infer@{registry.CODEC_REVISION} is not in the"):
        fetch(registry.codec_checkpoint(), "codec", tmp_path)


@pytest.mark.parametrize("precision, weight", [("int8", "Int8Tensor"), ("bnb-int8", "Int8Params")])
def test_prequantized_export_loads_as_stored_with_the_official_tokenizer(hub_cache, precision, weight):
    """precision int8 and bnb-int8 both pick the community int8 export; int8 carries its rows into torchao, bnb-int8
    loads it with bitsandbytes; its missing tokenizer.model comes from the official repo of the same mode and
    language."""
    if precision == "bnb-int8":
        pytest.importorskip("bitsandbytes", reason="bitsandbytes is not installed")
    models = load_models(codec=False, cache_dir=hub_cache, device="cpu", precision=(precision, "fp32"))
    assert models.report.stage1 == f"{S1_INT8}@main" and models.report.precision == (precision, "fp32")
    assert type(models.stage1.model.layers[0].mlp.up_proj.weight).__name__ == weight
    assert models.tokenizer.vocab_size > 83000


def test_model_cache_reuses_models_and_swaps_only_stage1(hub_cache):
    """Same arguments: the same Models. cot -> icl: a new stage-1 LM, the same stage-2 object. Another precision:
    everything reloads."""
    cache = ModelCache()
    first = cache.get(codec=False, cache_dir=hub_cache, device="cpu")
    stage1, stage2 = first.stage1, first.stage2
    assert cache.get(codec=False, cache_dir=hub_cache, device="cpu") is first
    icl = cache.get(codec=False, cache_dir=hub_cache, device="cpu", mode="icl")
    assert icl is first and icl.stage2 is stage2 and icl.stage1 is not stage1
    assert icl.report.stage1 == f"{S1_EN_ICL}@main"
    bf16 = cache.get(codec=False, cache_dir=hub_cache, device="cpu", mode="icl", precision="bf16")
    assert bf16.stage2 is not stage2 and bf16.stage2.dtype == torch.bfloat16 and first.stage2 is None  # freed
    cache.clear()
    assert cache.models is None


# -- errors ----------------------------------------------------------------------------------------------------------

def test_repo_missing_from_the_cache_while_offline(tmp_path):
    """Offline and not cached: the message names the repo, the cache and the ways out."""
    with pytest.raises(ModelLoadError) as info:
        load_models(codec=False, cache_dir=tmp_path, device="cpu", language="zh")
    message = str(info.value)
    assert "m-a-p/YuE-s1-7B-anneal-zh-cot@main is not in the Hugging Face cache" in message
    assert str(tmp_path) in message and "HF_HUB_OFFLINE=1" in message and "local folder" in message


@pytest.mark.parametrize("remove, expected", [
    ("config.json", "is missing config.json"),
    ("tokenizer.model", "is missing tokenizer.model"),
    ("model.safetensors", "is missing model.safetensors (the weights)"),
])
def test_local_stage1_folder_missing_a_file(tiny_lm_dir, tmp_path, remove, expected):
    """A stage-1 folder without config.json, tokenizer.model or weights is refused before loading, with the layout."""
    shutil.copytree(tiny_lm_dir / "s1", tmp_path / "s1")
    (tmp_path / "s1" / remove).unlink()
    with pytest.raises(ModelLoadError, match="stage-1 checkpoint folder holds config.json") as info:
        load_models(stage1=tmp_path / "s1", stage2=tiny_lm_dir / "s2", codec=False, device="cpu")
    assert expected in str(info.value)


def test_missing_shard_named_by_the_index(tiny_lm_dir, tmp_path):
    """A sharded checkpoint whose index lists a shard that is not there is refused, naming the shard."""
    shutil.copytree(tiny_lm_dir / "s2", tmp_path / "s2")
    (tmp_path / "s2" / "model.safetensors").unlink()
    (tmp_path / "s2" / "model.safetensors.index.json").write_text(
        '{"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}')
    with pytest.raises(ModelLoadError, match="is missing model-00001-of-00002.safetensors, model-00002-of-00002"):
        load_lm(tmp_path / "s2")


def test_folder_that_does_not_exist_and_a_file(tiny_lm_dir):
    """A path that is not there is reported as a missing folder (not tried as a Hub id); a file is refused."""
    with pytest.raises(ModelLoadError, match="checkpoint folder not found: /no/such/dir"):
        load_lm("/no/such/dir")
    with pytest.raises(ModelLoadError, match="is a file; give a checkpoint folder"):
        load_lm(tiny_lm_dir / "s1" / "config.json")


def test_truncated_weights_file(tiny_lm_dir, tmp_path):
    """A weights file cut short (an interrupted copy) fails with a message that says to fetch it again."""
    shutil.copytree(tiny_lm_dir / "s2", tmp_path / "s2")
    weights = tmp_path / "s2" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelLoadError, match="could not load the LM in .* truncated weights file"):
        load_lm(tmp_path / "s2")


def test_interrupted_download_in_the_cache(tiny_lm_dir, tmp_path):
    """A snapshot whose cached tree listing names a file that never arrived is an interrupted download (uses
    huggingface_hub's private tree-cache writer, the record a real download leaves)."""
    from huggingface_hub._tree_cache import TreeCacheEntry, write_tree_cache

    files = folder_files(tiny_lm_dir / "s2", skip=("model.safetensors",))
    put_in_hub_cache(tmp_path, registry.STAGE2_REPO, files, commit="1" * 40)
    entries = {name: TreeCacheEntry(size=1, blob_id="0" * 40) for name in [*files, "model.safetensors"]}
    write_tree_cache(str(tmp_path / "models--m-a-p--YuE-s2-1B-general"), "1" * 40, entries)
    with pytest.raises(ModelLoadError, match="is incomplete \\(an interrupted download\\): run again online"):
        load_lm(registry.STAGE2_REPO, cache_dir=tmp_path)


def test_cached_snapshot_without_weights(tiny_lm_dir, tmp_path):
    """A cached snapshot lacking the weights (no tree listing to tell) is refused after the download step."""
    put_in_hub_cache(tmp_path, registry.STAGE2_REPO, folder_files(tiny_lm_dir / "s2", skip=("model.safetensors",)))
    expected = "YuE-s2-1B-general@main .* is missing model.safetensors .* download was interrupted"
    with pytest.raises(ModelLoadError, match=expected):
        load_lm(registry.STAGE2_REPO, cache_dir=tmp_path)


def _http_error(kind, status: int):
    import httpx2

    response = httpx2.Response(status, request=httpx2.Request("GET", "https://huggingface.co/api/models/x"))
    return kind(f"{status} error", response=response)


@pytest.mark.parametrize("make_error, expected", [
    (lambda e: _http_error(e.RepositoryNotFoundError, 404), "owner/name was not found on the Hugging Face Hub"),
    (lambda e: _http_error(e.GatedRepoError, 403), "owner/name is gated or private .* set HF_TOKEN"),
    (lambda e: _http_error(e.HfHubHTTPError, 401), "owner/name is gated or private .* set HF_TOKEN"),
    (lambda e: _http_error(e.HfHubHTTPError, 503), "downloading owner/name@main failed .* download resumes"),
    (lambda e: OSError(errno.ENOSPC, "No space left on device"), "disk full while downloading owner/name@main"),
    (lambda e: ConnectionResetError("connection reset by peer"), "downloading owner/name@main failed .* resumes"),
    (lambda e: e.LocalEntryNotFoundError("offline"), "owner/name@main is not in the Hugging Face cache"),
])
def test_hub_failures_become_actionable_errors(monkeypatch, make_error, expected):
    """Each Hub failure (not found, gated/unauthorized, server error, disk full, dropped connection, offline) maps to
    one ModelLoadError whose message names the repo and what to do."""
    import huggingface_hub
    from huggingface_hub import errors

    def fail(*args, **kwargs):
        raise make_error(errors)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fail)
    with pytest.raises(ModelLoadError, match=expected):
        fetch(Checkpoint("owner/name"), "lm")


def test_failed_load_frees_what_was_loaded(tiny_lm_dir, monkeypatch):
    """When stage 2 fails to load, the stage-1 model already loaded is released (no half-loaded set)."""
    real, loaded = loading._load_lm_folder, []

    def load_then_fail(folder, device, precision):
        if loaded:
            raise ModelLoadError("stage 2 broke")
        model, precision = real(folder, device, precision)
        loaded.append(weakref.ref(model))
        return model, precision

    monkeypatch.setattr(loading, "_load_lm_folder", load_then_fail)
    with pytest.raises(ModelLoadError, match="stage 2 broke"):
        load_models(stage1=tiny_lm_dir / "s1", stage2=tiny_lm_dir / "s2", codec=False, device="cpu")
    gc.collect()
    assert len(loaded) == 1 and loaded[0]() is None


# -- bitsandbytes on the CPU -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("precision, layer", [("bnb-int8", "Linear8bitLt"), ("nf4", "Linear4bit")])
def test_bitsandbytes_quantizes_on_load_on_cpu(tiny_lm_dir, song_prompt, precision, layer):
    """bnb-int8/nf4 quantize-on-load works on this CPU: decoder Linears become bitsandbytes layers, lm_head stays a
    plain nn.Linear, the weights shrink as computed, and both decode loops run on it (stage 1 with full logits, stage 2
    with per-codebook head slices). The tiny stage-1 LM stands in for stage 2 too: bitsandbytes' CPU nf4 kernel
    needs in_features >= 64 (its block size), which the hidden-32 tiny stage 2 does not have."""
    bnb = pytest.importorskip("bitsandbytes", reason="bitsandbytes is not installed")
    model = load_lm(tiny_lm_dir / "s1", precision=precision)
    kinds = {type(m).__name__ for name, m in model.named_modules() if name.endswith("_proj")}
    assert kinds == {layer}, f"bitsandbytes {bnb.__version__}"
    assert type(model.lm_head) is torch.nn.Linear
    size = registry.llama_size(model.config.to_dict())
    # get_memory_footprint leaves out the quantization scales the formula includes: within 1%
    assert model.get_memory_footprint() == pytest.approx(size.weight_bytes(precision), rel=0.01)
    sections = list(generate_sections(model, song_prompt, Sampling(max_new_tokens=8, min_new_tokens=4), seed=1,
                                      segments=1))
    assert sections[0].frames >= 2 and ((sections[0].vocal >= 0) & (sections[0].vocal < 1024)).all()
    codes = np.arange(12) % 1024
    vocal, _ = stage2.generate(model, [codes, codes], Stage2Config(chunk_frames=8))
    assert vocal.shape == (8, 12) and (vocal[0] == codes).all() and ((vocal >= 0) & (vocal < 1024)).all()


class Spy(torch.nn.Linear):
    """A part that records where it is sent."""

    def __init__(self, calls: list, name: str, quantized: bool = False):
        super().__init__(2, 2)
        self.calls, self.name = calls, name
        if quantized:
            self.hf_quantizer = object()

    def to(self, *args, **kwargs):
        self.calls.append((self.name, str(args[0])))
        return super().to(*args, **kwargs)


def test_offload_moves_each_part_to_the_device_only_for_its_stage():
    """With offload, prepare() sends what the stage does not need home first, then brings its part; a bitsandbytes
    part never moves; without offload nothing moves."""
    calls = []
    parts = {n: Spy(calls, n) for n in ("stage1", "stage2", "codec", "vocal_vocoder", "instrumental_vocoder")}
    parts["stage2"] = Spy(calls, "stage2", quantized=True)
    models = Models(tokenizer=None, device=torch.device("cpu"), offload=True, **parts,
                    placement={"stage1": "device", "stage2": "device", "codec": "home", "vocal_vocoder": "home",
                               "instrumental_vocoder": "home"})
    models.prepare("stage1")
    assert calls == []  # already placed for stage 1
    models.prepare("stage2")
    assert calls == [("stage1", "cpu")] and models.placement["stage1"] == "home"
    calls.clear()
    models.prepare("audio")
    assert [n for n, _ in calls] == ["codec", "vocal_vocoder", "instrumental_vocoder"]
    assert models.placement["stage2"] == "device"  # quantized: resident throughout
    calls.clear()
    models.prepare("stage1")
    assert [n for n, _ in calls] == ["codec", "vocal_vocoder", "instrumental_vocoder", "stage1"]
    models.offload, calls[:] = False, []
    models.prepare("stage2")
    assert calls == []
    with pytest.raises(ValueError, match="stage must be one of"):
        models.prepare("decode")
