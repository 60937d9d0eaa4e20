"""yue/text/tags.py: our curated tag lists and how picked tags and free text make one genre string."""
from yue.text import tags


def test_categories_are_curated_lists_of_unique_tags():
    assert tags.CATEGORIES == ("genre", "instrument", "mood", "gender", "timbre")
    everything = [t for group in tags.TAGS.values() for t in group]
    assert len(everything) == len(set(everything)), "a tag is listed twice"
    for category, group in tags.TAGS.items():
        assert 7 <= len(group) <= 40, category  # gender is short by nature; the others ~20-40
        assert all(t == t.strip().lower() and t for t in group)
    assert sum(len(g) >= 20 for g in tags.TAGS.values()) == 4


def test_find_tags_matches_whole_tags_longest_first():
    found = tags.find_tags("K-Pop dream pop female vocal airy vocal 808 poppy")
    assert found["genre"] == ["k-pop", "dream pop"]  # not "pop" inside either, nor in "poppy"
    assert found["gender"] == ["female vocal"]  # not "female" on its own
    assert found["timbre"] == ["airy vocal"]
    assert found["instrument"] == ["808"]


def test_compose_orders_by_category_and_keeps_free_words():
    text = tags.compose({"timbre": ["bright vocal"], "genre": ["pop"], "mood": ["uplifting"]}, "pop shimmering reverb")
    assert text == "pop uplifting bright vocal shimmering reverb"
    assert tags.free_words("rock gritty vocal lots of reverb") == "lots of reverb"


def test_unpicking_a_tag_removes_it_from_the_text():
    text = "pop piano uplifting my own words"
    picked = tags.find_tags(text)
    picked["instrument"] = []
    assert tags.compose(picked, text) == "pop uplifting my own words"


def test_a_picker_sets_only_its_own_category():
    text = "pop sad piano my own words"
    assert tags.set_category(text, "mood", ["dreamy", "calm"]) == "pop piano dreamy calm my own words"
    assert tags.set_category(text, "instrument", []) == "pop sad my own words"
