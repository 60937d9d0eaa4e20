"""pyproject.toml: `pip install .` and `pip install -e .` give `import yue` from any folder and a `yue` command that
is `python -m yue`; only the library ships (app.py and space/ are the Space, not the package).

Each install goes into its own virtual environment (on this Python's packages, nothing downloaded: --no-deps,
--no-index, --no-build-isolation), from a copy of the checkout's pyproject.toml, README.md and yue/, so neither this
Python's packages nor the checkout change."""
import importlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from tests import ROOT

QUIET = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
SHIPPED = ("pyproject.toml", "README.md", "yue")


def entry_point() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["yue"]


def run(command: list, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    """A command with no PYTHONPATH leading to the checkout."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | QUIET
    return subprocess.run([str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def installed(tmp_path: Path, *how: str) -> tuple[Path, Path]:
    """(the copy installed, the environment's bin folder) after `pip install *how COPY` in a fresh environment."""
    source, environment = tmp_path / "yue-space", tmp_path / "env"
    source.mkdir()
    for name in SHIPPED:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                           if (ROOT / name).is_dir() else {}))
    made = run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", environment], tmp_path)
    assert made.returncode == 0, made.stderr
    python = environment / "bin" / "python"
    done = run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--no-build-isolation", *how,
                source], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    return source, environment / "bin"


def help_text(command: list, cwd: Path) -> str:
    done = run([*command, "generate", "--help"], cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_yue_command_is_the_function_python_m_yue_runs():
    """pyproject's `yue` script names yue.cli.main:main, the function yue/__main__.py calls."""
    module, _, name = entry_point().partition(":")
    from yue.cli import main as cli_main

    assert getattr(importlib.import_module(module), name) is cli_main.main
    assert "from .cli.main import main\n" in (ROOT / "yue" / "__main__.py").read_text()


def test_an_installed_package_works_from_any_folder_with_its_command(tmp_path):
    """After `pip install .`, from an empty folder elsewhere: `import yue` (and its heavy modules) imports the
    installed copy, every module of the checkout's yue is there, `yue generate --help` prints exactly what `python
    -m yue generate --help` prints, and the Space (app, space) is not installed."""
    _, bin_folder = installed(tmp_path, "--no-compile")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    found = run([bin_folder / "python", "-c", "import yue, yue.pipeline, yue.cli.main; print(yue.__file__)"],
                elsewhere)
    assert found.returncode == 0, found.stderr
    package = Path(found.stdout.strip()).parent
    assert package.parent.name == "site-packages" and tmp_path in package.parents
    modules = {path.relative_to(ROOT / "yue") for path in (ROOT / "yue").rglob("*.py")}
    assert modules == {path.relative_to(package) for path in package.rglob("*.py")}
    assert help_text([bin_folder / "yue"], elsewhere) == help_text([bin_folder / "python", "-m", "yue"], elsewhere)
    for app_part in ("app", "space"):
        missing = run([bin_folder / "python", "-c", f"import {app_part}"], elsewhere)
        assert "ModuleNotFoundError" in missing.stderr, app_part


def test_an_editable_install_imports_the_checkout_from_any_folder(tmp_path):
    """After `pip install -e .` (the README's commands), yue imports from another folder as the checkout's own
    files (an edit shows at once), and the `yue` command answers there."""
    source, bin_folder = installed(tmp_path, "-e")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    found = run([bin_folder / "python", "-c", "import yue; print(yue.__file__)"], elsewhere)
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()) == source / "yue" / "__init__.py"
    assert help_text([bin_folder / "yue"], elsewhere).startswith("usage: python -m yue generate")
