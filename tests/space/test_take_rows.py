"""space/take_rows.py: with several takes each has its row (title, mix, stems, bundle) and the one-song players are
hidden; the kept take's row is marked."""
from pathlib import Path

from space.take_rows import show_takes, take_title


def test_several_takes_hide_the_one_song_players_and_mark_the_kept_take(tmp_path):
    """Two takes: the one-song players are hidden (take 1 is shown once, in its row), each row gets its title, mix,
    stems and bundle; after keeping take 2, take 2's row says it is the kept take and take 1's where it came from."""
    files = {name: tmp_path / f"{name}.wav" for name in ("m1", "v1", "i1", "b1", "m2", "v2", "i2", "b2")}
    for path in files.values():
        path.write_bytes(b"")
    made = [{"take": t, "seed": 41 + t, **{kind: str(files[f"{kind[0]}{t}"]) for kind in ("mix", "vocal",
             "instrumental", "bundle")}, "kept": 2} for t in (1, 2)]
    updates = show_takes(made, 3)
    assert updates[0].visible is False and updates[1].visible is True  # one-song players, takes box
    row = updates[2:8]
    assert row[0].visible and row[1] == "**Take 1** · seed 42 · from take 2, the one kept"
    assert [Path(row[i].value["path"]).name for i in (2, 3, 4)] == ["m1.wav", "v1.wav", "i1.wav"]
    assert take_title(made[1]) == "**Take 2** · seed 43 · ✓ the take you kept, gone on"
    assert take_title({"take": 1, "seed": 5}) == "**Take 1** · seed 5"
    assert updates[14].visible is False and len(updates) == 2 + 3 * 6
    assert show_takes(None, 2)[0].visible is True  # one take (or none yet): the one-song players
