"""The package layout, read from the source: every import runs down the floors of the data flow (never up, never
from `yue` into the Space), each package says what it is, and only the Space imports gradio and spaces."""
import ast
from pathlib import Path

from tests import ROOT

# Floors, bottom up: a module may import its own group and any lower floor, nothing above. text and codec share a
# floor and know nothing of each other.
FLOORS = {
    "yue.config": 0, "yue.rates": 0, "yue.checks": 0, "yue.eta": 0, "yue.files": 0,  # settings, checks, values, files
    "yue.arrays": 1,  # user .npy/.npz read safely (their messages say what a path is: yue.files)
    "yue.text": 1, "yue.codec": 1,  # prompts from lyrics; codes to sound and back
    "yue.lm": 2,  # the language models at work
    "yue.weights": 3,  # checkpoints, loading, devices
    "yue.bundle": 4,  # a song's codes and settings in one .npz, checked on reading
    "yue.audio": 5, "yue.song": 5,  # audio files, the typed request and song
    "yue.request": 6,  # a request's checks and stage-1 prompt
    "yue.rows": 6,  # a run's rows and audio while it is made
    "yue.steps": 6,  # a run's steps of a section, timed and reported
    "yue.pipeline": 7,  # the one API
    "yue.cli": 8,  # python -m yue
    "yue": 9, "yue.__main__": 9,
    "space": 10,  # the Space, over the pipeline
}
PACKAGES = ("yue", "yue/text", "yue/lm", "yue/codec", "yue/weights", "yue/cli", "space")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def group(module: str) -> str | None:
    """The FLOORS key a module belongs to (its package, or itself for yue's top modules); None outside ours."""
    parts = module.split(".")
    if parts[0] == "space":
        return "space"
    if parts[0] != "yue":
        return None
    key = ".".join(parts[:2])
    if key not in FLOORS:
        raise AssertionError(f"{module} is in no floor of the layout: add it to FLOORS in tests/test_layout.py")
    return key


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, inside functions too, relative ones made absolute; `from P import
    m` counts as importing P.m when m is a module."""
    here, found = module_name(path), []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = here.split(".") if path.name == "__init__.py" else here.split(".")[:-1]
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                where = ROOT / full.replace(".", "/")
                is_module = where.with_suffix(".py").exists() or where.is_dir()
                found.append((node.lineno, full if is_module else base))
    return found


def sources() -> list[Path]:
    return sorted([*(ROOT / "yue").rglob("*.py"), *(ROOT / "space").rglob("*.py")])


def test_every_import_runs_down_the_floors():
    """No import from a lower floor to a higher one (text and codec import neither lm nor weights, lm does not import
    weights, nothing in yue imports space), and text and codec do not import each other."""
    upward = []
    for path in sources():
        mine = group(module_name(path))
        for line, target in imports(path):
            theirs = group(target)
            if theirs is None or theirs == mine:
                continue
            if FLOORS[theirs] >= FLOORS[mine]:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not upward, "\n".join(upward)


def test_the_floors_are_real():
    """The check above reads real imports: the pipeline imports the request checks and three packages, and a made-up upward import in a
    lower package would be caught (the space package imports yue, never the other way)."""
    pipeline = {group(target) for _, target in imports(ROOT / "yue/pipeline.py")}
    assert {"yue.request", "yue.lm", "yue.codec", "yue.weights"} <= pipeline
    assert FLOORS[group("yue.lm.stage1")] < FLOORS[group("yue.weights.loading")] < FLOORS[group("space.serving")]


def test_each_package_says_what_it_is_and_the_old_flat_modules_are_gone():
    for package in PACKAGES:
        doc = ast.get_docstring(ast.parse((ROOT / package / "__init__.py").read_text()))
        assert doc and len(doc.splitlines()) >= 2, f"{package}/__init__.py needs a docstring saying what it holds"
    flat = {path.stem for path in (ROOT / "yue").glob("*.py")}
    assert flat == {"__init__", "__main__", "arrays", "audio", "bundle", "checks", "config", "eta", "files", "pipeline",
                    "rates", "request", "rows", "song", "steps"}
    assert not [path.name for path in ROOT.glob("*.py") if path.name != "app.py"]


def test_only_the_space_imports_gradio_and_spaces():
    for path in [*sources(), *(ROOT / "bench").rglob("*.py")]:
        if path.is_relative_to(ROOT / "space"):
            continue
        heavy = [target for _, target in imports(path) if target.split(".")[0] in ("gradio", "spaces")]
        assert not heavy, f"{path.relative_to(ROOT)} imports {heavy}"
