"""A LLaMA decoder pass over a transformers model's own modules, with a static KV cache and CUDA-graph decode steps.

Why not the transformers forward: a decode step there rebuilds masks and cache views in Python for each of the
thousands of tokens, which on a GPU costs more than the 7B's weights take to read. Here (as in gpt-fast):
* the cache is preallocated once (`rows` x `capacity` slots per layer) and written in place;
* a decode step attends over a fixed bucket of slots (a multiple of BUCKET) with a boolean mask, so its shapes are
  static and, on CUDA with graph-safe weights (plain, or torchao int8/int4: no host syncs), it is captured once per
  bucket as a CUDA graph and replayed;
* prefill runs eagerly, in chunks chosen by the caller;
* with `settle_every` = B, the slots of every B decode steps are written again by one prefill of those tokens, so a
  run cut and resumed (`replay`) leaves the same cache bits as an uncut one in any precision (yue/lm/settle.py);
* with YUE_COMPILE=1 (dedicated GPUs; off by default) the decode step is torch.compile'd, with YUE_COMPILE=aot
  exported and compiled ahead of time by AOTInductor (yue/lm/compiled.py), then captured as above.

The weights (and so the checkpoint files) are the model's own: the embedding, output and down projections are called
as they are (bitsandbytes and torchao layers included), and so are q/k/v and gate/up, or with YUE_FUSED=1 one matmul
for each group of plain weights made row blocks of one tensor (yue/lm/fusion.py; quantized groups stay separate);
attention, the cache and (in "fast" kernels) the norm are ours:
* prefill attention is PyTorch's SDPA with `repeat_kv`, as transformers does;
* decode attention ("fast", the default) is transformers' eager formula (bf16 scores, fp32 softmax) on the grouped
  queries: the query heads of one KV head are that head's query rows, so the GQA cache is never copied, and cuBLAS
  spreads the long key axis over the whole GPU (SDPA's memory-efficient kernel runs one block per (row, head): 8
  blocks for stage 1, measured 1.8x slower at 12k context on an H200);
* the RMSNorm ("fast") is torch's `rms_norm` in float32, then the module's weight, as the module computes it, in
  fewer kernels. `YUE_DECODE=plain` switches both back (SDPA in decode, the modules' own norms) for comparison.

No NaN by construction: every query attends at least to its own slot (callers never compute a row for a token that
row may not see), and the cache starts at zero, so masked slots hold finite values and 0 x value stays 0.
"""
from __future__ import annotations

import logging
import os

import torch
import torch.nn.functional as F
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv

from .compiled import AotStep
from .fusion import compile_mode, compiled, fusion_enabled, layer_projections
from .settle import Settling

log = logging.getLogger(__name__)

BUCKET = 256  # decode attends over a multiple of this many slots (a CUDA graph per bucket, one AOT package for all)
# torchao's weight-only tensor subclasses (yue/weights/quantize.py makes them): their matmul has no host sync and no
# data-dependent shape (tests/lm/test_decoder.py checks a step's ops), so they run in graphs and compile.
GRAPH_SAFE_WEIGHTS = ("Int8Tensor", "Int4TilePackedTo4dTensor", "Int4OpaqueTensor")


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def fast_kernels() -> bool:
    """Whether decoding uses our fused norm and matmul decode attention (YUE_DECODE=plain switches them off)."""
    return os.environ.get("YUE_DECODE", "fast") != "plain"


def graphs_possible(model) -> bool:
    """CUDA graphs need a CUDA model whose linear layers are graph-safe (bitsandbytes layers sync with the host) and
    may be switched off with YUE_CUDA_GRAPHS=0."""
    if os.environ.get("YUE_CUDA_GRAPHS", "1") == "0" or model.device.type != "cuda":
        return False
    return graph_safe_weights(model)


def graph_safe_weights(model) -> bool:
    """Whether the linear layers are `nn.Linear` with plain or torchao int8/int4 weights (not bitsandbytes)."""
    layer = model.get_decoder().layers[0]
    linears = [layer.self_attn.q_proj, layer.mlp.down_proj, model.get_output_embeddings()]
    return all(type(module) is torch.nn.Linear and type(module.weight).__name__ in ("Parameter",) + GRAPH_SAFE_WEIGHTS
               for module in linears)


class StaticDecoder(Settling):
    """The decoder of `model` (a transformers LLaMA) run on `rows` sequences sharing one static cache.

    Slots are shared across rows: slot s of every row holds the token fed at call position s. `visible[r, s]` says
    whether row r may attend to slot s (rows that skip tokens, like the guidance row, leave them unseen). Decode steps
    are settled every `settle_every` steps and a cut run's steps replayed (`settle`, `replay`: yue/lm/settle.py).
    """

    def __init__(self, model, rows: int, capacity: int, graphs: bool | None = None, settle_every: int | None = None):
        super().__init__(settle_every)
        self.decoder = model.get_decoder()
        config = model.config
        self.layers = self.decoder.layers
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        self.max_positions = config.max_position_embeddings
        self.device = model.device
        self.dtype = self.decoder.embed_tokens.weight.dtype
        if not self.dtype.is_floating_point:
            self.dtype = torch.bfloat16
        self.rows = rows
        self.fast = fast_kernels()
        self.scale = self.head_dim ** -0.5
        self.use_graphs = graphs_possible(model) if graphs is None else graphs and graphs_possible(model)
        # Built once per decoder (fusing the model's weights the first time): a model moved afterwards needs a new one.
        self.projections = [layer_projections(layer, fusion_enabled()) for layer in self.layers]
        mode = compile_mode()  # YUE_COMPILE (dedicated GPUs): the decode step compiled, inside our graphs
        self.decode = self._decode
        if mode and graph_safe_weights(model):
            self.decode = AotStep(self, BUCKET) if mode == "aot" else compiled(self._decode, mode)
        # The AOT package takes the attention length as a dynamic dimension; a slice as long as the whole cache would
        # be contiguous where shorter ones are not, which it cannot cover: one spare bucket keeps every slice shorter.
        self.spare = BUCKET if isinstance(self.decode, AotStep) else 0
        self.capacity = 0
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.visible = torch.zeros(rows, 0, dtype=torch.bool, device=self.device)
        positions = torch.arange(self.max_positions, device=self.device)[None]
        probe = torch.zeros(1, dtype=self.dtype, device=self.device)
        cos, sin = self.decoder.rotary_emb(probe, positions)  # the model's own tables, in its dtype
        self.cos, self.sin = cos[0], sin[0]
        # Static inputs and output of a decode step, written in place before each (graph) replay.
        self.step_ids = torch.zeros(rows, 1, dtype=torch.long, device=self.device)
        self.step_positions = torch.zeros(rows, 1, dtype=torch.long, device=self.device)
        self.step_slot = torch.zeros(1, dtype=torch.long, device=self.device)
        self.step_sees = torch.ones(rows, dtype=torch.bool, device=self.device)  # does each row see its new slot
        self.step_hidden = torch.zeros(rows, config.hidden_size, dtype=self.dtype, device=self.device)
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self.reserve(capacity)

    # -- cache -----------------------------------------------------------------------------------------------------

    def reserve(self, slots: int) -> None:
        """Make room for `slots` slots (rounded up to BUCKET); a grown cache copies what it holds and drops graphs."""
        if slots <= self.capacity:
            return
        capacity = _round_up(max(slots, 2 * self.capacity if self.capacity else slots), BUCKET)
        shape = (self.rows, self.kv_heads, capacity + self.spare, self.head_dim)
        old = self.capacity
        grown = []
        for cache in (self.keys, self.values):
            new = [torch.zeros(shape, dtype=self.dtype, device=self.device) for _ in self.layers]
            for target, source in zip(new, cache):
                target[:, :, :old] = source[:, :, :old]
            grown.append(new)
        self.keys, self.values = grown
        visible = torch.zeros(self.rows, capacity + self.spare, dtype=torch.bool, device=self.device)
        visible[:, :old] = self.visible[:, :old]
        self.visible = visible
        self.capacity = capacity
        self.graphs.clear()

    def clear(self) -> None:
        """Forget everything (a new window): no slot is visible; stale entries stay finite and are never attended."""
        self.visible.zero_()
        self.unsettled.clear()

    def copy_row(self, source: int, target: int) -> None:
        """Row `target` becomes a copy of row `source`: cache and visible slots (settled first, so that no later
        settling writes the target's own old tokens back)."""
        self.settle()
        for cache in self.keys + self.values:
            cache[target] = cache[source]
        self.visible[target] = self.visible[source]

    def finite(self) -> bool:
        """True when no cache entry is NaN or infinite (a NaN would poison every later step)."""
        return all(bool(torch.isfinite(t).all()) for t in self.keys + self.values)

    # -- passes ----------------------------------------------------------------------------------------------------

    def prefill(self, ids: torch.Tensor, positions: torch.Tensor, slot: int, rows: slice = slice(None),
                sees: torch.Tensor | None = None) -> torch.Tensor:
        """Feed ids (LongTensor[b, n]) at rotary `positions` ([b, n]) into slots [slot, slot + n) of cache `rows`;
        each new token sees the row's visible slots and the new tokens up to itself, except those `sees`
        (BoolTensor[b, n], default all) marks unseen for the row. Returns the last hidden state of each row,
        Tensor[b, H] (after the final norm). Decode steps not yet settled are settled first."""
        self.settle()
        n = ids.shape[1]
        self.reserve(slot + n)
        visible = self.visible[rows]
        visible[:, slot:slot + n] = True if sees is None else sees
        length = slot + n
        causal = torch.ones(n, length, dtype=torch.bool, device=self.device).tril(slot)
        mask = (visible[:, None, :length] & causal)[:, None]  # [b, 1, n, length]
        hidden = self._layers(ids, positions, torch.arange(slot, slot + n, device=self.device), rows, length, mask)
        return hidden[:, -1]

    def step(self, slot: int, ids: torch.Tensor | None = None, positions: torch.Tensor | None = None) -> torch.Tensor:
        """One token per row into `slot`: ids and rotary positions (LongTensor[rows]) are copied into `step_ids` /
        `step_positions`, or None when the caller wrote those in place. Row r sees its new slot if `step_sees[r]`
        (every row by default; a row that does not still attends to its earlier slots, so never to nothing).
        Returns Tensor[rows, H], a static buffer overwritten by the next step."""
        self.reserve(slot + 1)
        if ids is not None:
            self.step_ids.copy_(ids.view(-1, 1))
        if positions is not None:
            self.step_positions.copy_(positions.view(-1, 1))
        self.step_slot.fill_(slot)
        self._run_step(min(_round_up(slot + 1, BUCKET), self.capacity))
        return self._record_step(slot)

    def _run_step(self, length: int) -> None:
        """The decode step over `length` slots: a replayed CUDA graph when possible, else eagerly."""
        if not self.use_graphs:
            self.decode(length)
            return
        graph = self.graphs.get(length)
        if graph is None:
            try:
                graph = self._capture(length)
            except RuntimeError as error:  # keep generating, eagerly, rather than fail a song
                log.warning("CUDA graph capture failed (%s); decoding without graphs", error)
                self.use_graphs = False
                self.decode(length)
                return
        graph.replay()

    def _capture(self, length: int) -> "torch.cuda.CUDAGraph":
        # Warm up on a side stream first (as CUDA graphs require). The warm-up really runs the step: it writes the
        # same keys and values into the same slot as the replay that follows, so running it twice changes nothing.
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            self.decode(length)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        # thread_local: a server's other threads may use the GPU meanwhile; only this thread must not.
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            self.decode(length)
        self.graphs[length] = graph
        return graph

    def _decode(self, length: int) -> None:
        """The decode step on the static inputs, attending over slots [0, length)."""
        self.step_hidden.copy_(self.step_function(self.step_ids, self.step_positions, self.step_slot, self.step_sees,
                                                  self.visible, self.keys, self.values, length))

    def step_function(self, ids, positions, slot, sees, visible, keys, values, length: int,
                      tables: tuple | None = None) -> torch.Tensor:
        """A decode step as a function of its tensors (what yue/lm/compiled.py exports): writes the new slot into
        `visible` ([rows, capacity]) and each layer's `keys` / `values`, returns the hidden states [rows, H].
        tables: the rotary (cos, sin) tables, default the decoder's own."""
        visible.index_copy_(1, slot, sees[:, None])
        mask = visible[:, None, None, :length]  # [rows, 1, 1, length]
        if self.fast:  # one additive mask per step, shared by every layer: [rows * kv_heads, 1, length]
            bias = torch.zeros(mask.shape, dtype=self.dtype, device=self.device).masked_fill_(~mask, float("-inf"))
            mask = bias.expand(self.rows, self.kv_heads, 1, length).reshape(self.rows * self.kv_heads, 1, length)
        return self._layers(ids, positions, slot, slice(None), length, mask, keys, values, tables)[:, -1]

    def _norm(self, module, x: torch.Tensor) -> torch.Tensor:
        """LlamaRMSNorm: float32 normalisation, cast back, times the weight (the module's own order of rounding)."""
        if not self.fast:
            return module(x)
        normed = F.rms_norm(x.float(), (x.shape[-1],), eps=module.variance_epsilon)
        return module.weight * normed.to(x.dtype)

    def _layers(self, ids, positions, slots, rows: slice, length: int, mask, all_keys=None, all_values=None,
                tables=None):
        batch, n = ids.shape
        x = self.decoder.embed_tokens(ids)
        cos, sin = tables or (self.cos, self.sin)
        cos, sin = cos[positions], sin[positions]
        all_keys = self.keys if all_keys is None else all_keys
        all_values = self.values if all_values is None else all_values
        for layer, projections, keys, values in zip(self.layers, self.projections, all_keys, all_values):
            attention = layer.self_attn
            q, k, v = projections.qkv(self._norm(layer.input_layernorm, x))
            q = q.view(batch, n, self.heads, self.head_dim).transpose(1, 2)
            k = k.view(batch, n, self.kv_heads, self.head_dim).transpose(1, 2)
            v = v.view(batch, n, self.kv_heads, self.head_dim).transpose(1, 2)
            q, k = apply_rotary_pos_emb(q, k, cos, sin)
            keys_in, values_in = keys[rows], values[rows]
            keys_in.index_copy_(2, slots, k.to(self.dtype))
            values_in.index_copy_(2, slots, v.to(self.dtype))
            out = self._attend(q.to(self.dtype), keys_in[:, :, :length], values_in[:, :, :length], mask)
            x = x + attention.o_proj(out.transpose(1, 2).reshape(batch, n, self.heads * self.head_dim).to(x.dtype))
            x = x + projections.feed_forward(self._norm(layer.post_attention_layernorm, x))
        return self._norm(self.decoder.norm, x)

    def _attend(self, q, keys, values, mask) -> torch.Tensor:
        """q: [b, heads, n, D]; keys, values: [b, kv_heads, L, D]; mask: bool [b, 1, n, L] (or a fast decode step's
        float bias) -> [b, heads, n, D]."""
        batch, _, n, _ = q.shape
        groups = self.heads // self.kv_heads
        if mask.dtype != torch.bool:  # a "fast" decode step: mask is its additive bias, [batch * kv_heads, 1, L]
            length = keys.shape[2]
            grouped = q.reshape(batch * self.kv_heads, groups, self.head_dim)
            keys = keys.reshape(batch * self.kv_heads, length, self.head_dim)  # a view: rows and heads merge
            scores = torch.baddbmm(mask, grouped, keys.transpose(1, 2), alpha=self.scale)
            probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
            out = torch.bmm(probs, values.reshape(batch * self.kv_heads, length, self.head_dim))
            return out.reshape(batch, self.heads, 1, self.head_dim)
        if n == 1:  # the query heads of one KV head act as its query rows: no copy of the cache
            grouped = q.reshape(batch, self.kv_heads, groups, self.head_dim)
            out = F.scaled_dot_product_attention(grouped, keys, values, attn_mask=mask)
            return out.reshape(batch, self.heads, 1, self.head_dim)
        return F.scaled_dot_product_attention(q, repeat_kv(keys, groups), repeat_kv(values, groups), attn_mask=mask)
