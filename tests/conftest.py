"""Shared fixtures: tiny checkpoints written once per test session, and the official files in tests/data."""
import os

# Before anything imports gradio or huggingface_hub: no analytics, no Hub lookups (they retry for ~23 s offline).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import json
from pathlib import Path

import pytest
import torch

# Tiny models gain nothing from threads, and spinning OpenMP threads on a busy 2-core machine cost 10x.
torch.set_num_threads(1)

# The official files the tests compare against, in the repository (tests/data/NOTICE says where each comes from).
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def golden(data_dir) -> dict:
    return json.loads((data_dir / "golden.json").read_text())


@pytest.fixture(scope="session")
def official_tokenizer(data_dir):
    from yue.text.tokens import Tokenizer

    return Tokenizer(data_dir / "tokenizer.model")


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory) -> Path:
    """Tiny stage-1 (with tokenizer) and stage-2 LLaMA checkpoints in the Hugging Face layout."""
    from yue.weights.tiny import write_tiny

    folder = tmp_path_factory.mktemp("tiny_lm")
    write_tiny(folder, codec=False)
    return folder


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """Everything `python -m yue tiny` writes: both LMs, the tokenizer and the codec folder."""
    from yue.weights.tiny import write_tiny

    folder = tmp_path_factory.mktemp("tiny")
    write_tiny(folder)
    return folder


@pytest.fixture(scope="session")
def stage1_model(tiny_lm_dir):
    from yue.weights.loading import load_lm

    return load_lm(tiny_lm_dir / "s1")


@pytest.fixture(scope="session")
def stage2_model(tiny_lm_dir):
    from yue.weights.loading import load_lm

    return load_lm(tiny_lm_dir / "s2")


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_lm_dir):
    from yue.weights.loading import load_tokenizer

    return load_tokenizer(tiny_lm_dir / "s1")
