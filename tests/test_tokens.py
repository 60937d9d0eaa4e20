"""yue.tokens: the official tokenizer rule and the xcodec id layout, checked against golden.json."""
import numpy as np
import pytest

from yue import tokens


def test_special_ids_match_the_official_wrapper(official_tokenizer, golden):
    """<SOA>, <EOA>, <stage_1>, <stage_2> and the wrapper's vocab size are the official ones."""
    special = golden["special_ids"]
    assert official_tokenizer.special_ids["<SOA>"] == special["soa"] == tokens.SOA
    assert official_tokenizer.special_ids["<EOA>"] == special["eoa"] == tokens.EOA
    assert official_tokenizer.special_ids["<stage_1>"] == special["stage_1"] == tokens.STAGE_1
    assert official_tokenizer.special_ids["<stage_2>"] == special["stage_2"] == tokens.STAGE_2
    assert special["xcodec_sep_ids"] == [tokens.XCODEC]
    assert official_tokenizer.vocab_size == special["tokenizer_vocab_size"] == tokens.TOKENIZER_VOCAB
    assert official_tokenizer.sp.get_piece_size() == special["sentencepiece_pieces"]


def test_tokenize_matches_every_golden_case(official_tokenizer, golden):
    """Each piece is encoded on its own with the dummy prefix, specials cut out, no BOS/EOS."""
    for case in golden["tokenize"]["cases"]:
        assert official_tokenizer.tokenize(case["text"]) == case["ids"], case["text"]


def test_codebook0_ids_match_golden(golden):
    """1-codebook ids are 45334 + code."""
    case = golden["codebook0_ids"]
    assert tokens.codes_to_ids(np.array(case["codes"]).reshape(1, -1)).tolist() == case["ids"]


def test_eight_codebook_ids_are_frame_major_and_invert(golden):
    """8-codebook ids are frame-major with codebook k offset by 1024 k, and ids_to_codes inverts them."""
    case = golden["eight_codebook_ids"]
    ids = tokens.codes_to_ids(np.array(case["codes"]))
    assert ids.tolist() == case["ids"]
    assert tokens.ids_to_codes(ids, 8).tolist() == case["ids2npy"]


def test_out_of_range_code_is_named():
    """A code outside 0..1023 is reported with its value and place."""
    with pytest.raises(ValueError, match=r"code 1024 at codebook 1, frame 2"):
        tokens.codes_to_ids(np.array([[0, 0, 0], [0, 0, 1024]]))


def test_wrong_codebook_id_is_named():
    """An id from another codebook (which the official uint32 code would wrap) is refused with its value."""
    ids = tokens.codes_to_ids(np.zeros((2, 3), dtype=np.int64))
    ids[3] = tokens.XCODEC_OFFSET + 5  # frame 1, codebook 1 slot holds a codebook-0 id
    with pytest.raises(ValueError, match=r"id 45339 at frame 1 is not an xcodec codebook-1 id"):
        tokens.ids_to_codes(ids, 2)


def test_interleave_is_vocal_first_and_deinterleave_inverts():
    v, i = np.array([1, 2, 3]), np.array([7, 8, 9])
    mixed = tokens.interleave(v, i)
    assert mixed.tolist() == [1, 7, 2, 8, 3, 9]
    back_v, back_i = tokens.deinterleave(np.append(mixed, 4))  # a trailing half frame is dropped
    assert back_v.tolist() == [1, 2, 3] and back_i.tolist() == [7, 8, 9]


def test_interleave_refuses_tracks_of_different_length():
    with pytest.raises(ValueError, match="differ in length"):
        tokens.interleave([1, 2], [3])


def test_tokenizer_refuses_a_non_yue_model(tmp_path):
    """A missing file says where a tokenizer.model is expected."""
    with pytest.raises(FileNotFoundError, match="tokenizer.model"):
        tokens.Tokenizer(tmp_path / "tokenizer.model")
