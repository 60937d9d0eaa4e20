"""python -m yue --help: answers at once (no torch while parsing) and says what every flag is and its default."""
import argparse
import subprocess
import sys

import pytest

from yue.cli.parser import build_parser
from yue.config import DEFAULT_SECTIONS, Sampling

HEAVY = ("torch", "transformers", "numpy")
COMMANDS = ("generate", "prompt", "stage2", "decode", "encode", "tiny")


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (choices,) = [action.choices for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return choices


@pytest.mark.parametrize("args", [["--help"], ["generate", "--help"]])
def test_help_imports_no_torch_and_answers_at_once(args):
    """`python -m yue [generate] --help` in a fresh interpreter imports neither torch, transformers nor numpy (per
    `-X importtime`, which lists every module imported) and exits 0: importing torch is what took it 5-6 s. No wall-clock
    bound here (a busy machine would make it flaky): the missing heavy imports are the fact that makes it fast."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "yue", *args], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and "usage: python -m yue" in result.stdout, result.stderr
    imported = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert "yue.cli.parser" in imported  # the listing is real: the parser's own module is in it
    assert not {name for name in imported if name.split(".")[0] in HEAVY}


def test_building_the_parser_leaves_torch_unimported():
    """In a fresh interpreter, `import yue.cli.main` and its `build_parser()` leave no heavy module in sys.modules;
    `from yue import Pipeline` still works (imported on first use)."""
    code = ("import sys; import yue.cli.main; yue.cli.main.build_parser(); "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})); "
            "from yue import Pipeline, SongRequest, Sampling; print(Pipeline.__module__, 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "yue.pipeline True"]


def test_every_flag_and_positional_of_every_command_has_help_with_its_default():
    """Each command has a description and an example; each of its actions has help text, and an action with a
    default other than None/False shows it (through %(default)s or the value)."""
    commands = subparsers(build_parser())
    assert set(commands) == set(COMMANDS)
    for name, parser in commands.items():
        assert parser.description and "example:\n  python -m yue " + name in parser.epilog, name
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help and action.help.strip(), f"{name} {action.dest}"
            if action.default not in (None, False):
                assert "%(default)s" in action.help or str(action.default) in action.help, f"{name} {action.dest}"


def test_generate_help_shows_the_official_values_from_config():
    """The rendered help of generate names the official sampling values, read from config.Sampling, and the
    sections default (config.DEFAULT_SECTIONS) with how to make every section."""
    text = " ".join(subparsers(build_parser())["generate"].format_help().split())
    official = Sampling()
    for flag, value in (("--top-p P", official.top_p), ("--top-k K", official.top_k),
                        ("--temperature T", official.temperature),
                        ("--repetition-penalty R", official.repetition_penalty),
                        ("--max-new-tokens TOKENS", official.max_new_tokens),
                        ("--min-new-tokens TOKENS", official.min_new_tokens),
                        ("--guidance-first SCALE", official.guidance_first),
                        ("--guidance-later SCALE", official.guidance_later)):
        shown = text.split(flag + " ", 1)[1].split(" --", 1)[0]
        assert f"default {value}" in shown, (flag, shown)
    assert (0.93, 50, 1.0, 1.1, 3000, 1.5, 1.2) == (official.top_p, official.top_k, official.temperature,
                                                     official.repetition_penalty, official.max_new_tokens,
                                                     official.guidance_first, official.guidance_later)
    assert f"sections to generate (default {DEFAULT_SECTIONS}, the official run" in text and "`all` for every" in text


@pytest.mark.parametrize("value, message", [("0", "give at least 1 section (or 'all'), not 0"),
                                            ("many", "give a whole number of sections or 'all', not 'many'")])
def test_bad_segments_are_refused_by_the_parser(capsys, value, message):
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(["generate", "--segments", value])
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_segments_all_and_numbers_parse():
    parse = lambda *args: build_parser().parse_args(["generate", *args]).segments
    assert (parse(), parse("--segments", "all"), parse("--segments", "ALL"), parse("--segments", "3")) == (
        None, "all", "all", 3)
