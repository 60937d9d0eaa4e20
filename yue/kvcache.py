"""A transformers KV cache that grows in place: preallocated buffers, new keys written into them, views returned.

transformers' DynamicCache concatenates the whole cache at every step (a copy of everything cached so far per token);
for thousands of one-token steps that copy costs as much as the attention itself. Same values, same attention.
"""
from __future__ import annotations

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer


class GrowingLayer(DynamicLayer):
    def __init__(self, capacity: int):
        super().__init__()
        self.capacity = capacity
        self.length = 0

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        super().lazy_initialization(key_states, value_states)
        self.key_buffer = self.value_buffer = None
        self.length = 0

    def _grow(self, key_states: torch.Tensor, value_states: torch.Tensor, needed: int) -> None:
        capacity = max(needed, self.capacity, 2 * (self.key_buffer.shape[-2] if self.key_buffer is not None else 0))
        shape = lambda states: (*states.shape[:-2], capacity, states.shape[-1])
        keys = key_states.new_empty(shape(key_states))
        values = value_states.new_empty(shape(value_states))
        if self.length:
            keys[..., :self.length, :] = self.key_buffer[..., :self.length, :]
            values[..., :self.length, :] = self.value_buffer[..., :self.length, :]
        self.key_buffer, self.value_buffer = keys, values

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        if self.key_buffer is None or end > self.key_buffer.shape[-2]:
            self._grow(key_states, value_states, end)
        self.key_buffer[..., self.length:end, :] = key_states
        self.value_buffer[..., self.length:end, :] = value_states
        self.length = end
        self.keys = self.key_buffer[..., :end, :]
        self.values = self.value_buffer[..., :end, :]
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        raise NotImplementedError("GrowingLayer keeps its batch")

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError("GrowingLayer does not crop")


def growing_cache(config, capacity: int) -> DynamicCache:
    """A DynamicCache whose layers grow in place, first sized for `capacity` tokens."""
    cache = DynamicCache(config=config)
    cache.layers = [GrowingLayer(capacity) for _ in cache.layers]
    return cache
