"""Help that reads at 80 columns: nothing cut, no value metavar on flags, one example per command."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mdrl.cli import app

COMMANDS = ["score", "train", "serve", "study", "demo", "data build", "data inspect", "eval run",
            "eval suites", "eval serve-model", "tiny build"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_at_80_columns(command):
    result = CliRunner().invoke(app, [*command.split(), "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    text = result.output
    too_long = [line for line in text.splitlines() if len(line) > 80]
    assert not too_long, too_long
    assert "…" not in text and "<bool>" not in text
    assert "Example: mdrl " + command.split()[0] in text
