"""The Space builds where Spaces run: README's front matter and requirements.txt against ZeroGPU's supported versions
(https://huggingface.co/docs/hub/spaces-zerogpu, "Supported Versions", as of 2026-07-21), while the README's CPU
install (Python 3.11, torch==2.13.0 first) stays valid."""
import re

import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from tests import ROOT

ZEROGPU_PYTHONS = ("3.12.12", "3.10.13")
ZEROGPU_TORCH = ("2.8.0", "2.9.1", "2.10.0", "2.11.0")


def front_matter() -> dict:
    text = (ROOT / "README.md").read_text()
    return yaml.safe_load(re.match(r"---\n(.*?)\n---\n", text, re.DOTALL).group(1))


def requirements() -> list[Requirement]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [Requirement(line.split(" #")[0]) for line in lines if line.strip() and not line.startswith("#")]


def torch_for(python: str) -> list[Requirement]:
    """The torch lines pip applies under `python` (markers evaluated as there)."""
    environment = {"python_version": ".".join(python.split(".")[:2]), "python_full_version": python,
                   "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64"}
    return [r for r in requirements() if r.name == "torch" and (r.marker is None or r.marker.evaluate(environment))]


def test_the_space_python_is_one_zerogpu_runs():
    assert front_matter()["python_version"] in ZEROGPU_PYTHONS


def test_the_space_gets_a_torch_zerogpu_supports_exactly():
    """One torch line applies on the Space's Python, and it admits exactly one version: one on ZeroGPU's list."""
    lines = torch_for(front_matter()["python_version"])
    assert len(lines) == 1
    allowed = [v for v in ZEROGPU_TORCH if lines[0].specifier.contains(v)]
    assert allowed == ["2.11.0"] and not lines[0].specifier.contains("2.13.0")


def test_the_readme_cpu_install_still_resolves():
    """On the README's Python (3.11) the torch line admits the README's torch==2.13.0 CPU wheel, and on 3.12 (the
    Space's) a local install is told to use 2.11.0."""
    readme = (ROOT / "README.md").read_text()
    assert "(Python 3.11;" in readme and "pip install torch==2.13.0 -r requirements.txt" in readme
    lines = torch_for("3.11.7")
    assert len(lines) == 1 and lines[0].specifier.contains(Version("2.13.0"))
    assert "torch==2.11.0" in readme


def test_gradio_matches_the_sdk_version_with_the_mcp_extra():
    """The Space's Gradio (sdk_version) is the one requirements.txt pins, with the MCP extra the app serves."""
    gradio = next(r for r in requirements() if r.name == "gradio")
    assert gradio.specifier.contains(front_matter()["sdk_version"]) and gradio.extras == {"mcp"}


def test_torchao_is_pinned_to_a_release_the_space_torch_runs():
    """torchao 0.18 (yue/weights/quantize.py) supports torch from 2.11.0 on: the Space's torch line admits only that."""
    torchao = next(r for r in requirements() if r.name == "torchao")
    assert torchao.specifier.contains("0.18.0") and not torchao.specifier.contains("0.19.0")
    space_torch = torch_for(front_matter()["python_version"])[0]
    assert all(Version(v) >= Version("2.11.0") for v in ZEROGPU_TORCH if space_torch.specifier.contains(v))
