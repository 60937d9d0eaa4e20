"""space/gpu_table.py: the booking tables of README.md, docs/space.md and docs/models.md are the ones the code makes
from space/gpu_time.py's numbers, so the docs and the bookings say the same."""
from space import gpu_table, gpu_time
from tests import ROOT

DOCS = ("README.md", "docs/space.md", "docs/models.md")


def test_every_booking_table_in_the_docs_is_the_one_the_code_makes():
    """Each marked table equals `markdown(card)`; docs/space.md has one per card, README.md and docs/models.md the
    default card's (regenerate with `python -m space.gpu_table`)."""
    found = {}
    for doc in DOCS:
        tables = gpu_table.tables_in((ROOT / doc).read_text(encoding="utf-8"))
        found[doc] = [key for key, _ in tables]
        for key, text in tables:
            assert text == gpu_table.markdown(key), f"{doc}: the {key} table is stale; paste python -m space.gpu_table"
    assert found == {"README.md": ["large"], "docs/space.md": list(gpu_time.CARDS), "docs/models.md": ["large"]}


def test_the_table_says_which_speeds_are_measured_and_books_unmeasured_ones_at_bf16s():
    """torchao int8 and int4 rows take bf16's time and booking (listening or not), marked as not measured; nf4 and
    bnb-int8 their own."""
    rows = {row[0]: row for row in gpu_table.rows(gpu_time.CARDS["large"])}
    assert rows["`int8`"][2:5] == rows["`int4`"][2:5] == rows["`bf16`"][2:5]
    assert rows["`int8`"][5] == rows["`int4`"][5] == "bf16's: not measured yet"
    assert rows["`nf4`"][5] == rows["`bf16`"][5] == "measured (bench/gpu)" and rows["`nf4`"][2] != rows["`bf16`"][2]
