"""What a fresh ZeroGPU worker does before a GPU call's first line, timed on a real GPU with spaces' own code.

    python -m bench.bench_worker_start                   # a CUDA GPU, the `spaces` package, ~40 GB free disk
    python -m bench.bench_worker_start --spaces DIR      # spaces' package folder when it is not importable

The app's weights at bf16 (both LMs: stage 1 7B and the stage-2 estimate, random values; the codec left out: 0.6 GB)
are made on the CPU, then, as on ZeroGPU:
* pack: spaces' start-up writes them to disk (spaces/zero/torch/packing.py `pack_tensors`, O_DIRECT), once per
  Space start;
* a fresh worker, forked from that process (which never touched CUDA), starts CUDA (patching.py `init`: a first
  CUDA tensor) and copies the pack to the GPU (`pack_to_cuda`: disk -> two 128 MB pinned buffers -> GPU);
* the same from host memory: tensors loaded after launch are not packed, and a fresh worker copies them from its
  parent's memory (patching.py `_move`: `.cuda()`, pinned first when under a tenth of the total).
"""
from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import sys
import tempfile
import time
import types
from pathlib import Path

GB = 1e9


def weights():
    """Tensors shaped as the app's two LMs at bf16 (yue.config.LLAMA_SIZES), filled (pages really allocated)."""
    import torch

    from yue.config import LLAMA_SIZES

    tensors = []
    for size in (LLAMA_SIZES["s1-7b"], LLAMA_SIZES["s2-estimate"]):
        h, inter, kv = size.hidden_size, size.intermediate_size, size.hidden_size // size.num_attention_heads
        shapes = [(size.vocab_size, h)] * 2 + [(h, h), (size.num_key_value_heads * kv, h),
                                                (size.num_key_value_heads * kv, h), (h, h), (inter, h), (inter, h),
                                                (h, inter), (h,), (h,)] * size.num_hidden_layers
        tensors += [torch.full(shape, 0.01, dtype=torch.bfloat16) for shape in shapes]
    return tensors


def packing_module(folder: str | None):
    """spaces/zero/torch/packing.py (and the two helpers it imports), from the installed package or `folder`."""
    if folder is None:  # found, not imported: spaces patches PyTorch on import when it thinks it runs on ZeroGPU
        folder = importlib.util.find_spec("spaces").submodule_search_locations[0]
    shim = {"zshim": types.ModuleType("zshim"), "zshim.utils": types.ModuleType("zshim.utils"),
            "zshim.zero": types.ModuleType("zshim.zero"), "zshim.zero.torch": types.ModuleType("zshim.zero.torch")}
    for name, module in shim.items():
        module.__path__ = []
        sys.modules[name] = module
    sys.modules["zshim.utils"].debug = lambda *args: None
    for name, path in (("zshim.zero.torch.utils", "zero/torch/utils.py"),
                       ("zshim.zero.torch.packing", "zero/torch/packing.py")):
        spec = importlib.util.spec_from_file_location(name, Path(folder) / path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules["zshim.zero.torch.packing"]


def fresh_worker(task, *args) -> dict:
    """Run `task(*args)` in a process forked from this one (as spaces forks its workers), return its timings."""
    context = multiprocessing.get_context("fork")
    results = context.SimpleQueue()
    worker = context.Process(target=lambda: results.put(task(*args)))
    worker.start()
    worker.join()
    return results.get()


def from_pack(packing, pack) -> dict:
    import torch

    started = time.perf_counter()
    torch.Tensor([0]).cuda()  # spaces' `init`: CUDA starts in the worker
    torch.cuda.synchronize()
    ready = time.perf_counter()
    packing.pack_to_cuda(pack)
    torch.cuda.synchronize()
    return {"cuda_init_s": ready - started, "pack_to_gpu_s": time.perf_counter() - ready}


def from_memory(tensors) -> dict:
    import torch

    started = time.perf_counter()
    torch.Tensor([0]).cuda()
    torch.cuda.synchronize()
    ready = time.perf_counter()
    limit = sum(t.numel() * t.element_size() for t in tensors) * 0.1  # patching.py PINNED_MEMORY_RATIO_LIMIT
    moved = [t.pin_memory().cuda(non_blocking=True) if t.numel() * t.element_size() < limit else t.cuda()
             for t in tensors]
    torch.cuda.synchronize()
    assert len(moved) == len(tensors)
    return {"cuda_init_s": ready - started, "memory_to_gpu_s": time.perf_counter() - ready}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", help="spaces' package folder (default: the installed package)")
    parser.add_argument("--folder", help="where to write the pack (default: a temporary folder)")
    args = parser.parse_args()
    packing = packing_module(args.spaces)
    started = time.perf_counter()
    tensors = weights()
    size = sum(t.numel() * t.element_size() for t in tensors)
    print(f"weights: {len(tensors)} tensors, {size / GB:.2f} GB bf16, made in {time.perf_counter() - started:.1f} s",
          flush=True)
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        started = time.perf_counter()
        fakes = {t: [packing.empty_like_raw_alloc(t)] for t in tensors}
        pack = packing.pack_tensors(set(tensors), fakes, folder)
        print(f"pack (start-up, once): {time.perf_counter() - started:.1f} s", flush=True)
        packed = fresh_worker(from_pack, packing, pack)
        print(f"fresh worker from the pack: CUDA start {packed['cuda_init_s']:.2f} s, pack to GPU "
              f"{packed['pack_to_gpu_s']:.2f} s ({size / GB / packed['pack_to_gpu_s']:.1f} GB/s)", flush=True)
    loaded = fresh_worker(from_memory, tensors)
    print(f"fresh worker from host memory: CUDA start {loaded['cuda_init_s']:.2f} s, memory to GPU "
          f"{loaded['memory_to_gpu_s']:.2f} s ({size / GB / loaded['memory_to_gpu_s']:.1f} GB/s)", flush=True)


if __name__ == "__main__":
    main()
