"""The one command: its subcommands, one spelling per concept, cheap help and refusals, the kept alias."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deepsquare.export.commands import COMMANDS, iter_parsers
from deepsquare.runtime import options

BIN = Path(sys.executable).parent
SUBCOMMANDS = ["train", "ablate", "export", "bench", "predict", "profile", "serve", "demo", "schema"]
# Second spellings the one command replaced; none may come back in any subcommand.
RETIRED = {
    "--format": "--to",
    "--runtimes": "--to",
    "--runtime": "--to",
    "--precisions": "--precision",
    "--checkpoint": "a positional CHECKPOINT",
    "--bundle": "a positional BUNDLE",
    "--json": "--out",
    "--bench-runs": "--runs",
    "--batch": "--batch-size",
    "--debug": "-v/--verbose",
    "--variants": "--variant",
    "--stages": "--dsop",
    "--dim": "--dsop-dim",
    "--iterations": "--dsop-iterations",
    "--warmup-runs": "--warmup",
    "--rounds": "--runs",
    "--output": "--out",
    "--silent": "-q/--quiet",
}
# Concepts defined once in deepsquare.runtime.options: wherever they appear, the same type and default.
SHARED = {
    "--precision": (options.precision_list, None),
    "--threads": (options.int_list, list(options.THREADS)),
    "--runs": (int, options.RUNS),
    "--warmup": (int, options.WARMUP),
    "--jobs": (int, 0),
}


def cli(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "80"}  # help is laid out for an 80-column terminal, whatever this one is
    return subprocess.run([str(BIN / "deepsquare"), *args], capture_output=True, text=True, timeout=timeout, env=env)


def all_parsers() -> dict[str, argparse.ArgumentParser]:
    return dict(iter_parsers())


def options_of(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {flag: action for action in parser._actions for flag in action.option_strings}


def test_help_lists_the_eight_subcommands_one_line_each() -> None:
    result = cli("--help")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    listed = [line.split()[0] for line in lines if line.startswith("    ") and line.split()[0] in SUBCOMMANDS]
    assert listed == SUBCOMMANDS
    for name in SUBCOMMANDS:  # the summary is on the subcommand's own line, and no line continues it
        (index,) = [i for i, line in enumerate(lines) if line.split()[:1] == [name] and line.startswith("    ")]
        assert len(lines[index].split()) > 2
        following = lines[index + 1] if index + 1 < len(lines) else ""
        assert not following.startswith(" " * 10), f"the summary of {name} wraps: {following!r}"
    assert [c.name for c in COMMANDS] == SUBCOMMANDS


def test_version_and_a_bad_subcommand() -> None:
    from importlib.metadata import version

    result = cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"deepsquare {version('deepsquare')}"
    result = cli("trian")
    assert result.returncode == 2 and "invalid choice: 'trian'" in result.stderr
    result = cli("profile")  # the local profile takes a MODEL; android, ios and parse are its sub-subcommands
    assert result.returncode == 2 and "the following arguments are required: MODEL" in result.stderr


def test_no_subcommand_spells_a_concept_twice() -> None:
    parsers = all_parsers()
    assert {f"deepsquare {name}" for name in SUBCOMMANDS} <= set(parsers)
    assert {"deepsquare bench isqrt", "deepsquare bench dsop", "deepsquare profile android"} <= set(parsers)
    for prog, parser in parsers.items():
        flags = options_of(parser)
        retired = sorted(set(flags) & set(RETIRED))
        assert not retired, f"{prog} spells {retired[0]}; the one spelling is {RETIRED[retired[0]]}"
        for flag, (kind, default) in SHARED.items():
            if flag in flags:
                action = flags[flag]
                assert action.type is kind and action.default == default, (prog, flag, action.type, action.default)
        if "--to" in flags:
            assert flags["--to"].type is options.format_list, prog
        if prog != "deepsquare" and prog.count(" ") >= 1 and parser._actions[1:]:
            for short, long in (("-q", "--quiet"), ("-v", "--verbose")):
                assert short in flags and flags[short] is flags[long], f"{prog} lacks {short}/{long}"


def test_every_flag_is_explained_and_every_command_has_an_example() -> None:
    for prog, parser in all_parsers().items():
        for action in parser._actions:
            assert action.help, f"{prog}: {action.option_strings or action.dest} has no help"
        if prog == "deepsquare" or prog == "deepsquare profile":
            continue
        description = parser.description or ""
        assert "Example" in description and f"  {prog} " in description, f"{prog} --help shows no example"
        text = parser.format_help()
        for action in parser._actions:
            default = action.default
            hidden = default is None or default is False or default == argparse.SUPPRESS or default in ("", [], ())
            shown = not hidden and action.option_strings
            if shown and action.dest != "help":
                assert "default" in parser._get_formatter()._get_help_string(action), (prog, action.dest)
        assert "deepsquare-" not in text.replace("deepsquare-export", ""), f"{prog} names a retired script"


def test_the_main_input_is_positional_where_a_command_takes_one() -> None:
    parsers = all_parsers()
    positional = {
        prog: [a.dest for a in parser._actions if not a.option_strings and a.dest != "help"]
        for prog, parser in parsers.items()
    }
    assert positional["deepsquare export"] == ["checkpoint"]
    assert positional["deepsquare bench"] == ["models"]
    assert positional["deepsquare predict"] == ["bundle", "images"]
    assert positional["deepsquare serve"] == ["bundles"]
    assert positional["deepsquare profile android"] == ["model"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "x.ckpt", "--to", "onnxx"], "unknown format 'onnxx' (did you mean 'onnx'?)"),
        (["export", "x.ckpt", "--precision", "int4"], "'int4' is not a precision"),
        (["export", "x.ckpt", "--precision", "fp32,int8"], "--precision takes one value in export"),
        (["bench", "--threads", "two"], "expected a comma list of whole numbers"),
        (["predict", "b", "x.jpg", "--threads", "1,2"], "--threads takes one value here"),
        (["predict", "b", "x.jpg", "--to", "onnx,tflite"], "--to takes one value here"),
        (["serve", "b", "--host", ""], "--host is empty"),
        (["serve", "b", "--runs", "1"], "--runs must be >= 2"),
        (["demo", "--dropout", "1.5"], "--dropout must be in [0, 1)"),
        (["profile", "android", "m.tflite"], "the following arguments are required: --benchmark-binary"),
        (["bench", "isqrt", "--dsop-dim", "0"], "--batch-size, --dsop-dim and --dsop-iterations must be >= 1"),
        (["export", "x.ckpt", "--keep-float", "se"], "--keep-float se applies to int8 files only"),
        (["export", "x.ckpt", "--sensitivity", "--precision", "fp16"], "--sensitivity applies to int8 files only"),
        (
            ["export", "x.ckpt", "--precision", "int8", "--keep-float", "depth-wise"],
            "unknown unit kind 'depth-wise' (did you mean",
        ),
        (
            ["export", "x.ckpt", "--precision", "int8", "--keep-float", "se", "--sensitivity"],
            "give it or --keep-float, not both",
        ),
    ],
)
def test_a_bad_flag_is_refused_before_torch_is_imported(args: list[str], message: str, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from deepsquare.export.commands import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 2, exc.code\n"
        "else:\n"
        "    raise AssertionError('not refused')\n"
        "assert 'torch' not in sys.modules, 'torch was imported before the flags were checked'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_importing_deepsquare_is_cheap_and_the_api_is_there() -> None:
    code = (
        "import sys\n"
        "import deepsquare as ds\n"
        "assert not {'torch', 'numpy', 'onnxruntime'} & set(sys.modules), sorted(sys.modules)\n"
        "assert callable(ds.export) and callable(ds.train) and callable(ds.bench) and callable(ds.load)\n"
        "assert ds.__version__ and 'torch' not in sys.modules\n"
        "import deepsquare.export.bench as module\n"
        "assert ds.export.bench is module and callable(ds.bench) and ds.bench is not module\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_deepsquare_export_alias_is_the_export_subcommand() -> None:
    env = {**os.environ, "COLUMNS": "80"}
    alias = subprocess.run(
        [str(BIN / "deepsquare-export"), "--help"], capture_output=True, text=True, timeout=60, env=env
    )
    assert alias.returncode == 0 and alias.stdout == cli("export", "--help").stdout
    assert sorted(p.name for p in BIN.glob("deepsquare*")) == ["deepsquare", "deepsquare-export"]
