"""yue.text.tokens: the official tokenizer rule and the xcodec id layout, checked against golden.json."""
import numpy as np
import pytest

from yue.text import tokens


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


def test_control_piece_names_every_control_and_audio_piece(official_tokenizer):
    """CONTROL_PIECE matches each of the wrapper's special strings and each vocabulary piece from <EOD> on (control
    markers and audio codes, 51 734 pieces); below <EOD> it matches only <s> and </s> (BOS/EOS), no text piece."""
    sp = official_tokenizer.sp
    for text in official_tokenizer.special_ids:
        assert tokens.CONTROL_PIECE.fullmatch(text), text
    for piece_id in range(tokens.EOD, sp.get_piece_size()):
        assert tokens.CONTROL_PIECE.fullmatch(sp.id_to_piece(piece_id)), (piece_id, sp.id_to_piece(piece_id))
    below = [sp.id_to_piece(i) for i in range(tokens.EOD) if tokens.CONTROL_PIECE.search(sp.id_to_piece(i))]
    assert below == ["<s>", "</s>"] and [sp.is_control(i) for i in (1, 2)] == [True, True]


def test_sentencepiece_never_forms_a_control_piece_from_text(official_tokenizer):
    """The model is BPE without user-defined pieces, and BPE only makes a piece by merging two pieces; no piece from
    <EOD> on is two vocabulary pieces joined, so SentencePiece alone can never emit one: control ids come from text
    only through the wrapper's special strings (which is why text holding one is refused)."""
    from sentencepiece import sentencepiece_model_pb2

    model = sentencepiece_model_pb2.ModelProto()
    model.ParseFromString(official_tokenizer.sp.serialized_model_proto())
    assert model.trainer_spec.model_type == sentencepiece_model_pb2.TrainerSpec.BPE
    normal = sentencepiece_model_pb2.ModelProto.SentencePiece.NORMAL
    assert not [p.piece for p in model.pieces if p.type == sentencepiece_model_pb2.ModelProto.SentencePiece.USER_DEFINED]
    vocabulary = {p.piece for p in model.pieces if p.type == normal}
    joined = [(piece, piece[:k], piece[k:]) for piece in (p.piece for p in model.pieces[tokens.EOD:])
              for k in range(1, len(piece)) if piece[:k] in vocabulary and piece[k:] in vocabulary]
    assert joined == []
    assert tokens.SOA in official_tokenizer.tokenize("la <SOA> la")  # what a refused special string would do
    assert max(official_tokenizer.tokenize("la <xcodec> <xcodec/0/5> la")) < tokens.EOD  # plain text pieces


def test_text_without_a_control_name_gets_only_text_ids(official_tokenizer):
    """Near misses of the control names ('<SOA', 'SOA>', '< EOA>', '<xcodec/0/>', '<eoa>' ...) tokenize into text
    and byte pieces only (ids 3..31999): nothing but a refused name can reach a control id."""
    rng = np.random.default_rng(9)
    alphabet = list("<>/_ sSOAEIVDxcodeklgmrtu0159\n") + ["<SO", "OA>", "<xcodec", "/0/", "<stage_", "<s_", "</", "s>"]
    checked, refused = 0, 0
    for _ in range(3000):
        text = "".join(rng.choice(alphabet, size=int(rng.integers(1, 12))))
        if tokens.CONTROL_PIECE.search(text):
            refused += 1  # the sample does reach real names (17 of them become control ids)
            continue
        ids = official_tokenizer.tokenize(text)
        assert all(3 <= i < tokens.EOD for i in ids), (text, ids)
        checked += 1
    assert checked > 2000 and refused >= 10
