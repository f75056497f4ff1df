"""Generic CLI error paths: usage errors, CustomvidError -> one line + exit 2, interrupts, `python -m`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from customvid.cli import main
from customvid.cli import world as world_cli
from customvid.errors import CustomvidError


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "usage: customvid" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_world_needs_a_subcommand(capsys):
    with pytest.raises(SystemExit) as info:
        main(["world"])
    assert info.value.code == 2


def test_missing_required_option(capsys):
    with pytest.raises(SystemExit) as info:
        main(["world", "render", "--prompt", "x"])  # no --out
    assert info.value.code == 2
    assert "--out" in capsys.readouterr().err


def test_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as info:
        main(["world", "render", "--help"])
    assert info.value.code == 0
    assert "--record" in capsys.readouterr().out


def test_customvid_error_is_one_line_exit_2(monkeypatch, capsys):
    def boom(args):
        raise CustomvidError("something the user can fix")

    monkeypatch.setattr(world_cli, "cmd_vocab", boom)
    assert main(["world", "vocab"]) == 2
    captured = capsys.readouterr()
    assert captured.err == "customvid: error: something the user can fix\n" and captured.out == ""


def test_interrupt_exits_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(world_cli, "cmd_vocab", interrupted)
    assert main(["world", "vocab"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_python_m_customvid_bad_prompt(tmp_path):
    """The real entry point: a bad prompt gives exit 2 and exactly one line on stderr, no traceback."""
    out = tmp_path / "c.mp4"
    proc = subprocess.run(
        [sys.executable, "-m", "customvid", "world", "render", "--prompt", "a red square moving left",
         "--out", str(out)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("customvid: error: no background")
    assert "Traceback" not in proc.stderr and not out.exists()
