"""The command line's conventions: one-line refusals with exit code 2, --version, choices, readable pipes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from features.cli import console, make_console
from serving.cli import app

RISKCTL = [sys.executable, "-m", "serving.cli"]


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RISKCTL, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize(
    "args, names",
    [
        (["train", "--data", "var/x", "--stage", "bogus"], "--stage"),
        (["features", "build", "--data", "var/x", "--stage", "all", "--unknown"], "--unknown"),
        (["data", "import", "--source", "nowhere", "--in", "x.csv", "--out", "y"], "--source"),
        (["token", "--role", "janitor", "--user", "x"], "--role"),
    ],
)
def test_a_bad_argument_is_one_error_line_and_exit_code_2(args: list[str], names: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and names in errors[0]
    assert "Traceback" not in result.output


def test_a_missing_data_folder_is_refused_in_one_line_without_traceback(tmp_path: Path) -> None:
    done = _run("data", "validate", "--data", str(tmp_path / "nowhere"))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "nowhere" in done.stderr and "no such folder" in done.stderr and "Traceback" not in done.stderr


def test_a_file_that_is_not_parquet_is_refused_naming_it(tmp_path: Path) -> None:
    for name in ("persons", "events", "outcomes"):
        (tmp_path / f"{name}.parquet").write_bytes(b"not parquet")
    done = _run("data", "validate", "--data", str(tmp_path))
    assert done.returncode == 2 and "persons.parquet" in done.stderr and "Traceback" not in done.stderr


def test_an_unexpected_fault_is_one_line_and_debug_shows_its_traceback(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.write_text("a file where RISK_HOME should be a folder")
    env = {**os.environ, "RISK_HOME": str(home)}
    plain = subprocess.run(
        [*RISKCTL, "token", "--role", "auditor", "--user", "x"], capture_output=True, text=True, env=env, timeout=120
    )
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    assert plain.stderr.startswith("Error: ") and "--debug" in plain.stderr and plain.stderr.count("\n") == 1
    debug = subprocess.run(
        [*RISKCTL, "--debug", "token", "--role", "auditor", "--user", "x"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("riskctl ") and result.output.strip().split()[1][0].isdigit()


def test_help_imports_no_heavy_library() -> None:
    code = (
        "import sys; import serving.cli; heavy = [m for m in ('pandas', 'numpy', 'sklearn', 'lightgbm', "
        "'mlflow', 'bentoml', 'pandera') if m in sys.modules]; print(','.join(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_flags_show_no_type_placeholder() -> None:
    result = CliRunner().invoke(app, ["train", "--help"])
    assert result.exit_code == 0
    assert "<bool>" not in result.output and "intake|midterm|release|all" in result.output


def test_literal_brackets_are_printed_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    make_console().print("   [pass] ECE 0.006 <= limit 0.02  [FAIL] nothing [bold]x[/bold]")
    out = capsys.readouterr().out
    assert "[pass] ECE" in out and "[FAIL]" in out and "[bold]x[/bold]" in out


def test_tables_keep_their_columns_in_a_pipe(tmp_path: Path) -> None:
    data = tmp_path / "cohort"
    assert _run("data", "synthetic", "--out", str(data), "--persons", "300").returncode == 0
    done = _run("features", "build", "--data", str(data))
    assert done.returncode == 0, done.stderr
    header = next(line for line in done.stdout.splitlines() if "stage" in line and "rate" in line)
    for column in ("assessed", "labelled", "censored", "reoff<D", "revoked<D"):
        assert column in header
    assert "…" not in done.stdout
    assert not console.is_terminal  # pytest captures output: the module console is the pipe's
