"""The native executor of TT programs: ``native.cpp``, built once with the machine's C++ compiler.

:func:`ttedge.tt.tt_apply` runs a contraction program (:mod:`ttedge.tt.apply`) either as generated
Python functions inside a Python autograd node, or, when this module is built, through the C++
executor of the same instructions: one C++ autograd node, no interpreter between the products.
On the 4096x4096 benchmark layer at batch 1 that is about 15% of a training step (the Python around
two dozen small GEMMs and the node's own overhead); the results are the same to the bit, which the
tests check.

Nothing is compiled behind a user's back: ``ttedge native`` (run by ``./run setup``)
builds it into a cache folder keyed by the source, PyTorch and Python versions; :func:`executor`
only loads what is already built and otherwise returns None (the Python path). Environment:
``TTEDGE_NATIVE=0`` turns the executor off; ``TTEDGE_NATIVE_DIR`` moves the cache (default: inside
the virtual environment when there is one, else ``~/.cache/ttedge/native``).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType

import torch

from ..errors import ToolError

__all__ = ["SOURCE", "build", "build_dir", "executor", "set_enabled"]

SOURCE = Path(__file__).with_name("native.cpp")

_state: dict[str, object] = {}  # "module": the loaded module or None, once looked for; "off": forced off


def _key() -> str:
    text = SOURCE.read_bytes() + f"{torch.__version__} {sys.version} {sys.platform}".encode()
    return hashlib.sha256(text).hexdigest()[:16]


def build_dir() -> Path:
    """Where the executor is built: ``$TTEDGE_NATIVE_DIR``, else the virtual environment's
    ``share/ttedge-native``, else ``~/.cache/ttedge/native``; one subfolder per source version."""
    if root := os.environ.get("TTEDGE_NATIVE_DIR"):
        base = Path(root)
    elif sys.prefix != sys.base_prefix:
        base = Path(sys.prefix) / "share" / "ttedge-native"
    else:
        base = Path.home() / ".cache" / "ttedge" / "native"
    return base / _key()


def _name() -> str:
    return f"ttedge_native_{_key()}"


def _library() -> Path:
    return build_dir() / f"{_name()}{'.pyd' if sys.platform == 'win32' else '.so'}"  # what torch's builder writes


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(_name(), path, loader=importlib.machinery.ExtensionFileLoader(_name(), str(path)))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(verbose: bool = False) -> Path:
    """Compile the executor (about a minute) unless it is built; returns the library's path.
    Raises :class:`~ttedge.errors.ToolError` when there is no C++ compiler or the build fails."""
    lib = _library()
    if lib.exists():
        return lib
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        raise ToolError(f"no C++ compiler {compiler!r} on PATH to build the native TT executor; install g++ "
                        "(or set CXX), or leave it unbuilt: ttedge then runs the same programs in Python.")
    from torch.utils.cpp_extension import load

    lib.parent.mkdir(parents=True, exist_ok=True)
    path = os.environ.get("PATH", "")
    # torch's builder runs ninja from PATH: the one pip installed beside this Python comes first
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), path])
    try:
        load(_name(), [str(SOURCE)], extra_cflags=["-O2"], build_directory=str(lib.parent), verbose=verbose)
    except (RuntimeError, OSError, ImportError) as err:
        raise ToolError(f"building the native TT executor failed ({str(err).splitlines()[0] if str(err) else type(err).__name__}); "
                        f"run `ttedge native --verbose` to see the compiler's output.") from err
    finally:
        os.environ["PATH"] = path
    if not lib.exists():
        raise ToolError(f"the native TT executor was built but {lib} is missing; remove {lib.parent} and build again.")
    for old in lib.parent.parent.iterdir():  # builds of other source versions
        if old != lib.parent and old.is_dir() and (old / "build.ninja").exists():
            shutil.rmtree(old, ignore_errors=True)
    _state.pop("module", None)
    return lib


def set_enabled(enabled: bool) -> None:
    """Use the native executor when it is built (True, the default) or never (False)."""
    if enabled:
        _state.pop("off", None)
    else:
        _state["off"] = True


def executor() -> ModuleType | None:
    """The built executor, or None when it is not built, turned off, or fails to load (looked for
    once per process; ``TTEDGE_NATIVE`` is read then)."""
    if "module" not in _state:
        lib = _library()
        try:
            found = _load(lib) if lib.exists() and os.environ.get("TTEDGE_NATIVE", "1") != "0" else None
        except ImportError:
            found = None  # a build the running PyTorch cannot load: the Python path is used
        _state["module"] = found
    return None if "off" in _state else _state["module"]  # type: ignore[return-value]
