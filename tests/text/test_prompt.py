"""yue.text.prompt: lyrics split and checks, and stage-1 prompts token-identical to the official code (golden.json)."""
import re

import numpy as np
import pytest

from yue.text import prompt
from yue.config import Limits
from yue.text.tokens import EOD
from yue.lm.stage2 import row_prompt


@pytest.fixture(scope="module")
def inputs(golden):
    return golden["inputs"]


@pytest.fixture(scope="module")
def codes(data_dir):
    """The official example's mix, vocal and instrumental code files hold the same codes: one file stands for all."""
    example = np.load(data_dir / "codes" / "dummy.npy")[0]
    return {"mix": example, "vocal": example, "instrumental": example}


def test_split_matches_the_official_sections(inputs):
    sections = prompt.split_lyrics(inputs["lyrics"])
    assert [s.text for s in sections] == inputs["sections"]
    assert prompt.header_text(inputs["genres"].strip(), sections) == inputs["header_text"]


def test_header_and_section_ids(official_tokenizer, inputs, golden):
    """The header and each section are tokenized on their own, as the official code does."""
    sections = prompt.split_lyrics(inputs["lyrics"])
    assert official_tokenizer.tokenize(inputs["header_text"]) == golden["header_ids"]["ids"]
    assert official_tokenizer.tokenize(sections[0].text) == golden["section_ids"]["section1"]
    assert official_tokenizer.tokenize(sections[1].text) == golden["section_ids"]["section2"]


def test_cot_prompt_pieces_match_golden(official_tokenizer, inputs, golden):
    """CoT: segment-1 prompt and the segment-2 piece appended after the history."""
    built = prompt.build_prompt(official_tokenizer, inputs["genres"], prompt.split_lyrics(inputs["lyrics"]))
    assert list(built.pieces[0]) == golden["cot_segment1_prompt"]["ids"]
    assert list(built.pieces[1]) == golden["segment2_prompt_piece"]["ids"]
    assert not built.uses_reference


def test_icl_single_track_prompt_matches_golden(official_tokenizer, inputs, golden, codes):
    """ICL with one mixed track, window 0-2 s = the first 100 frames."""
    reference = prompt.single_reference_ids(codes["mix"], 0.0, 2.0)
    assert reference.size == golden["icl_single_segment1_prompt"]["reference_ids_length"]
    built = prompt.build_prompt(official_tokenizer, inputs["genres"], prompt.split_lyrics(inputs["lyrics"]), reference)
    assert list(built.pieces[0]) == golden["icl_single_segment1_prompt"]["ids"]
    assert list(built.pieces[1]) == golden["segment2_prompt_piece"]["ids"]


@pytest.mark.parametrize("case", ["icl_dual_segment1_prompt", "icl_dual_segment1_prompt_distinct"])
def test_icl_dual_track_prompt_matches_golden(official_tokenizer, inputs, golden, codes, case):
    """ICL with vocal + instrumental tracks, interleaved vocal first, window 0-1 s = 100 interleaved ids."""
    if case.endswith("distinct"):
        vocal, instrumental = codes["vocal"][:2000], codes["instrumental"][2000:4000]
        assert prompt.dual_reference_ids(vocal, instrumental, 0.0, 1.0).tolist() == golden[case]["reference_ids"]
    else:
        vocal, instrumental = codes["vocal"], codes["instrumental"]
    reference = prompt.dual_reference_ids(vocal, instrumental, 0.0, 1.0)
    built = prompt.build_prompt(official_tokenizer, inputs["genres"], prompt.split_lyrics(inputs["lyrics"]), reference)
    assert list(built.pieces[0]) == golden[case]["ids"]


def test_stage2_row_prompt_matches_golden(golden, codes):
    row = row_prompt(codes["vocal"][:300])
    case = golden["stage2_row_prompt"]
    assert len(row) == case["length"] and row[:10] == case["first_10"] and row[-5:] == case["last_5"]


@pytest.mark.parametrize("case", ["deinterleave", "deinterleave_distinct"])
def test_split_output_matches_golden(golden, case):
    vocal, instrumental = prompt.split_output(golden[case]["input_ids"], uses_reference=False)
    assert vocal.tolist() == golden[case]["vocal_codes"]
    assert instrumental.tolist() == golden[case]["instrumental_codes"]


def test_split_output_skips_the_reference_block_in_icl():
    """With a reference, the first <SOA>..<EOA> pair is the reference and is not part of the song."""
    ids = [32001, 32016, 45334, 45335, 32002, 7, 32001, 32016, 45340, 45341, 32002]
    vocal, instrumental = prompt.split_output(ids, uses_reference=True)
    assert vocal.tolist() == [[6]] and instrumental.tolist() == [[7]]


def test_continuation_places_done_sections_as_audio(official_tokenizer, inputs):
    """Sections already made are kept as given; pieces stay the same as for a fresh song."""
    sections = prompt.split_lyrics(inputs["lyrics"])
    fresh = prompt.build_prompt(official_tokenizer, inputs["genres"], sections)
    done = prompt.codes_to_stage1_ids([1, 2], [3, 4])
    assert done.tolist() == [45335, 45337, 45336, 45338]
    resumed = prompt.build_prompt(official_tokenizer, inputs["genres"], sections, done=(done,))
    assert resumed.pieces == fresh.pieces and resumed.done[0].tolist() == done.tolist()


def test_lyrics_without_tags_say_how_to_write_them():
    with pytest.raises(prompt.LyricsError, match=r"(?s)no section tags.*\[verse\]"):
        prompt.parse_lyrics("just some words\nwithout tags")


def test_empty_section_is_named():
    with pytest.raises(prompt.LyricsError, match=r"Section 2 \[chorus\] is empty"):
        prompt.parse_lyrics("[verse]\nla la\n[chorus]\n\n[outro]\nbye")


def test_text_before_the_first_tag_is_a_warning():
    parsed = prompt.parse_lyrics("intro words\n[verse]\nla la")
    assert len(parsed.sections) == 1
    assert "ignored" in parsed.warnings[0] and "intro words" in parsed.warnings[0]


@pytest.mark.parametrize("lyrics, labels, warning", [
    ("[verse]\nla la\n\n[pre-chorus]\nup we go\nhigher\n\n[chorus]\nhey\n", ["verse", "chorus"],
     "Line 4: '[pre-chorus]' is not a section tag under the official rule (one word in brackets: letters, digits or "
     "_), so these 3 lines are dropped: '[pre-chorus]', 'up we go', 'higher'. Write [prechorus] to keep them."),
    ("[Verse 2]\nfirst\n[chorus]\nhey\n", ["chorus"],
     "Line 1: '[Verse 2]' is not a section tag under the official rule (one word in brackets: letters, digits or "
     "_), so these 2 lines are dropped: '[Verse 2]', 'first'. Write [verse] to keep them."),
    ("[verse]\nla\n[]\nunder an empty tag\n[chorus]\nhey", ["verse", "chorus"],
     "Line 3: '[]' is not a section tag"),
    ("[verse]\nla\n[ chorus ]\nhey", ["verse"], "Line 3: '[ chorus ]' is not a section tag"),
    ("[verse]\nla\n[chorus\nhey\n[outro]\nbye", ["verse", "outro"],
     "Line 3: '[chorus' has no closing ']', so these 2 lines are dropped: '[chorus', 'hey'. Write [chorus]"),
    ("[verse]\nhello [la] there\nmore\n[chorus]\nhey", ["verse", "la", "chorus"],
     "Line 2: [la] inside a line starts a new section under the official rule (sung: 'there'). Put section tags on "
     "their own line, or leave out the brackets."),
    ("[verse]\nI sing [softly now\nmore\n[chorus]\nhey", ["verse", "chorus"],
     "Line 2: a '[' inside a line ends the section under the official rule, so from '[softly now' on these 2 lines "
     "are dropped: '[softly now', 'more'. Leave out the '['."),
])
def test_dropped_lines_are_named_with_the_tag_to_write(lyrics, labels, warning):
    """The official rule still decides the sections; every line it drops, and every [word] inside a line, is named
    with its line number and what to write instead."""
    parsed = prompt.parse_lyrics(lyrics)
    assert [s.label for s in parsed.sections] == labels
    assert any(w.startswith(warning) for w in parsed.warnings), parsed.warnings


def test_lyrics_of_bad_tags_only_say_which_tag_to_write():
    with pytest.raises(prompt.LyricsError, match=r"(?s)no section tags.*'\[pre-chorus\]' is not a section tag.*"
                                                 r"Write \[prechorus\]"):
        prompt.parse_lyrics("[pre-chorus]\nonly this")
    with pytest.raises(prompt.LyricsError, match=r"(?s)Section 1 \[verse\] is empty.*Line 2: '\[pre-chorus\]'"):
        prompt.parse_lyrics("[verse]\n[pre-chorus]\nla\n[chorus]\nhey")


def test_crlf_and_a_bom_give_the_official_sections(inputs):
    """Windows line endings and a UTF-8 BOM: the same sections (so the same prompt) as the LF lyrics, no warning."""
    windows = "\ufeff" + inputs["lyrics"].replace("\n", "\r\n")
    assert [s.text for s in prompt.split_lyrics(windows)] == inputs["sections"]
    parsed = prompt.parse_lyrics(windows)
    assert [s.text for s in parsed.sections] == inputs["sections"] and not parsed.warnings


@pytest.mark.parametrize("text", ["[verse]\nla \x1b[31mred\x1b[0m\n", "[verse]\nla\x00la\n"])
def test_control_characters_are_refused(text):
    with pytest.raises(prompt.LyricsError, match=r"Lyrics hold a control character \(U\+00(1B|00)\) on line 2"):
        prompt.parse_lyrics(text)
    with pytest.raises(prompt.LyricsError, match="Genre tags hold a control character"):
        prompt.check_genres("pop\x07")


def test_limits_are_named_in_the_message():
    with pytest.raises(prompt.LyricsError, match="limit is 2"):
        prompt.parse_lyrics("[a]\nx\n[b]\ny\n[c]\nz", Limits(max_sections=2))
    with pytest.raises(prompt.LyricsError, match="Genre tags are empty"):
        prompt.check_genres("   ")


def test_empty_reference_window_is_refused():
    with pytest.raises(prompt.LyricsError, match="window 40-50 s is empty; the reference is 2.0 s long"):
        prompt.single_reference_ids(np.zeros(100, dtype=np.int64), 40, 50)


def test_lyrics_too_long_for_the_context_say_how_many_sections_fit(official_tokenizer):
    """The first prompt (header with all lyrics) must fit the context left after max_new_tokens; the message says
    how many sections fit, and that many do fit while one more does not."""
    import re

    sections = prompt.split_lyrics("".join(f"[verse]\nline {n} " + "word " * 30 + "\n" for n in range(8)))
    with pytest.raises(prompt.LyricsError, match=r"only the first \d+ of 8 sections fit") as error:
        prompt.check_context(official_tokenizer, "pop", sections, None, max_context=300)
    fit = int(re.search(r"first (\d+) of", str(error.value)).group(1))
    assert 0 < fit < 8
    prompt.check_context(official_tokenizer, "pop", sections[:fit], None, max_context=300)
    with pytest.raises(prompt.LyricsError):
        prompt.check_context(official_tokenizer, "pop", sections[:fit + 1], None, max_context=300)


@pytest.mark.parametrize("text, name, line", [
    ("[verse]\nla la\nhold on <SOA> tight\n", "<SOA>", 3),
    ("[verse]\nla la <EOA>\n", "<EOA>", 2),
    ("[verse]\n<stage_1>\nla\n", "<stage_1>", 2),
    ("[verse]\nla\n[chorus]\nsing <xcodec> and <xcodec/0/5>\n", "<xcodec>", 4),
    ("[verse]\nla\n<s>bold</s>\n", "<s>", 3),
])
def test_control_token_names_are_refused_with_field_name_and_line(text, name, line):
    """A control token's name in lyrics or genre is refused, naming the field, the name and its line."""
    with pytest.raises(prompt.LyricsError, match=rf"^Lyrics hold '{name}' on line {line}: that is the name of one "
                                                 r"of the model's control tokens .* write it without '<' and '>'\."):
        prompt.parse_lyrics(text)
    with pytest.raises(prompt.LyricsError, match=rf"^Genre tags hold '{name}' on line 1: "):
        prompt.check_genres(f"pop {name} female")


def test_every_special_string_of_the_tokenizer_is_refused(official_tokenizer):
    """Each string the official wrapper turns into a control id (<SOA> -> 32001 ...) is refused in lyrics and genre,
    so no request can put a control id where the prompt has text."""
    for name, token_id in official_tokenizer.special_ids.items():
        assert token_id in official_tokenizer.tokenize(f"la {name} la")
        with pytest.raises(prompt.LyricsError, match=f"Lyrics hold '{name}' on line 2"):
            prompt.parse_lyrics(f"[verse]\nla {name} la\n")
        with pytest.raises(prompt.LyricsError, match=f"Genre tags hold '{name}'"):
            prompt.check_genres(f"pop{name}")


@pytest.mark.parametrize("marker", prompt.PROMPT_MARKERS)
def test_the_prompts_own_markers_are_refused(marker):
    """[start_of_segment] and the other markers the prompt writes between sections cannot come from the user: inside
    a line the official rule would start a section named after it and then strip it from the section text."""
    with pytest.raises(prompt.LyricsError, match=rf"^Lyrics hold {re.escape(repr(marker))} on line 2: the prompt "
                                                 "itself uses it to mark where sections and the reference start and "
                                                 "end"):
        prompt.parse_lyrics(f"[verse]\nhello {marker} x\n")
    with pytest.raises(prompt.LyricsError, match=r"^Genre tags hold '\["):
        prompt.check_genres(f"pop {marker}")


def test_text_near_the_control_names_keeps_its_official_prompt(official_tokenizer):
    """Angle brackets, hearts, lowercase or spaced names are words: accepted, and tokenized as the official code does
    (only text pieces, no control id)."""
    lyrics = "[verse]\nI <3 you, a < b > c\n<soa> is not <SOA >, nor < EOA>\n<xcodec/0/> <Verse>\n"
    parsed = prompt.parse_lyrics(lyrics)
    assert not parsed.warnings
    ids = official_tokenizer.tokenize(prompt.header_text("pop <male> vocal", parsed.sections))
    assert all(3 <= i < EOD for i in ids)
    prompt.check_genres("pop <male> vocal")


@pytest.mark.parametrize("text", ["[verse]\nla \udcff la\n", "[verse]\nla\ud800\n"])
def test_lone_surrogates_are_refused_like_control_characters(text):
    """A byte that was not UTF-8 (a shell's argv, raw JSON "\\udcff") reaches Python as a lone surrogate: refused with
    the field and line, not a tokenizer cast error."""
    with pytest.raises(prompt.LyricsError, match=r"Lyrics hold a character that is not text \(U\+D[C8]\w\w, a lone "
                                                 r"surrogate\) on line 2"):
        prompt.parse_lyrics(text)
    with pytest.raises(prompt.LyricsError, match="Genre tags hold a character that is not text"):
        prompt.check_genres("pop \udcff")


def test_genre_line_breaks_are_alike_whichever_system_typed_them():
    """CRLF and CR in genre tags are line breaks as LF is (not 'a terminal's colour codes'), in the prompt too."""
    sections = prompt.split_lyrics("[verse]\nla\n")
    assert prompt.check_genres("pop\r\nfemale") == prompt.check_genres("pop\rfemale") == "pop\nfemale"
    assert prompt.header_text("pop\r\nfemale", sections) == prompt.header_text("pop\nfemale", sections)


def test_a_window_ending_far_past_the_reference_ends_with_it():
    """end 1e308 (an overflow before) takes the reference to its end."""
    ids = prompt.single_reference_ids(np.zeros(100, dtype=np.int64), 1, 1e308)
    assert ids.size == 50  # 1 s to 2 s, an id a frame


def test_a_reference_window_too_long_for_short_lyrics_says_how_long_it_may_be(official_tokenizer):
    """A 599 s reference with 2 short lyric lines said 'Lyrics are too long … only the first 0 of 2 sections fit':
    the window is what is too long, and a window of the length the message gives does fit."""
    import re

    sections = prompt.split_lyrics("[verse]\nla la\n[chorus]\nhey\n")
    codes = np.zeros(599 * 50, dtype=np.int64)
    limit = 16384 - 3000 - 1
    with pytest.raises(prompt.LyricsError, match=r"^The reference window is too long for these lyrics: its 599.0 s "
                                                 r"take 29950 tokens.* at most (\d+) s long") as error:
        prompt.check_context(official_tokenizer, "pop", sections, prompt.single_reference_ids(codes, 0, 599), limit)
    most = int(re.search(r"at most (\d+) s", str(error.value)).group(1))
    assert 200 < most < 270
    prompt.check_context(official_tokenizer, "pop", sections, prompt.single_reference_ids(codes, 0, most), limit)


@pytest.mark.parametrize("text, tag, line", [("[[verse]]\nla\n", "[[verse]]", 1), ("[verse]\nla\n[chorus]]\nhey\n",
                                                                                    "[chorus]]", 3)])
def test_doubled_brackets_are_refused_with_the_tag_to_write(text, tag, line):
    """[[verse]] said "'[' has no closing ']'" and sang the ']': refused, naming the line and the tag to write."""
    with pytest.raises(prompt.LyricsError, match=rf"^Lyrics hold '{re.escape(tag)}' on line {line}: a section tag "
                                                 rf"has one pair of brackets .* Write \[{tag.strip('[]')}\]\."):
        prompt.parse_lyrics(text)
