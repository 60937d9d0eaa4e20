"""yue.weights.tiny: the offline checkpoints use the official layouts and ids."""
import json

from yue.text import tokens


def test_tiny_tokenizer_has_the_official_piece_layout(tiny_tokenizer, official_tokenizer):
    """Special and codec pieces sit at the official ids; the wrapper assigns the same extra ids."""
    for piece_id in (1, 2, 13, 32000, 32001, 32002, 32013, 32016, 32017, 32022, 45333, 45334, 46357, 46358, 53525,
                     53526, 57621, 57622, 83733):
        assert tiny_tokenizer.piece(piece_id) == official_tokenizer.piece(piece_id), piece_id
    assert tiny_tokenizer.special_ids == official_tokenizer.special_ids
    assert tiny_tokenizer.vocab_size == tokens.TOKENIZER_VOCAB


def test_tiny_tokenizer_follows_the_official_rule(tiny_tokenizer):
    """Specials are cut out, the dummy prefix is added per piece, newline is byte 13."""
    ids = tiny_tokenizer.tokenize("<SOA>ab\n<EOA>")
    assert ids[0] == tokens.SOA and ids[-1] == tokens.EOA
    assert [tiny_tokenizer.piece(i) for i in ids[1:-1]] == ["▁", "a", "b", "<0x0A>"]


def test_tiny_llama_checkpoints_use_the_hf_layout(tiny_lm_dir):
    """config.json + model.safetensors, LLaMA with the official vocab size (covers every id used)."""
    for name in ("s1", "s2"):
        config = json.loads((tiny_lm_dir / name / "config.json").read_text())
        assert config["model_type"] == "llama" and config["vocab_size"] == 83968
        assert (tiny_lm_dir / name / "model.safetensors").is_file()
    assert (tiny_lm_dir / "s1" / "tokenizer.model").is_file()
