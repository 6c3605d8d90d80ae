"""aiohttp's server half without its client half: about 4 MB less RSS in the daemon.

`import aiohttp` runs `aiohttp/__init__.py`, which imports the whole client (connector, cookie jar,
client request and response, digest auth, attrs, email, netrc, ...) before any server module. The
server modules (`aiohttp.web` and what it imports) need only the package to exist. `install` puts
a package module with aiohttp's own path, spec and version in its place, so that `from aiohttp import
web` loads the server alone.

Nothing is lost: the first look-up of a name the shell lacks (`aiohttp.ClientSession`, `from aiohttp
import ClientTimeout`) runs the real `__init__` in the shell's namespace (PEP 562 `__getattr__`), and
from then on it is the complete package. It does nothing when aiohttp is already imported.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

_VERSION_PREFIX = '__version__ = "'


def install() -> None:
    """Make `import aiohttp` load the package shell, if aiohttp is not imported yet."""
    if "aiohttp" in sys.modules:
        return
    spec = importlib.util.find_spec("aiohttp")
    if spec is None or spec.origin is None or spec.loader is None or not spec.submodule_search_locations:
        return  # not installed as a regular package: leave the import to Python
    version = _read_version(spec.origin)
    if version is None:
        return  # a layout we do not know: import it whole
    shell = types.ModuleType("aiohttp")
    shell.__file__ = spec.origin
    shell.__path__ = list(spec.submodule_search_locations)
    shell.__spec__ = spec
    shell.__package__ = "aiohttp"
    shell.__dict__["__version__"] = version  # aiohttp.http reads it at import
    loader = spec.loader

    def complete(name: str) -> Any:
        """A submodule (`from . import hdrs` in aiohttp's own modules) is imported on its own;
        any other name runs the real `__init__` into the shell, once, and is answered from there."""
        if not name.startswith("__") and importlib.util.find_spec(f"aiohttp.{name}") is not None:
            return importlib.import_module(f"aiohttp.{name}")
        del shell.__dict__["__getattr__"]
        loader.exec_module(shell)
        try:
            return shell.__dict__[name]
        except KeyError:
            raise AttributeError(f"module 'aiohttp' has no attribute {name!r}") from None

    shell.__dict__["__getattr__"] = complete  # PEP 562: asked for names the shell lacks
    sys.modules["aiohttp"] = shell


def _read_version(init_path: str) -> str | None:
    """`__version__` from the first lines of `aiohttp/__init__.py`, without running it."""
    try:
        with open(init_path, encoding="utf-8") as f:
            for _ in range(5):
                line = f.readline()
                if line.startswith(_VERSION_PREFIX):
                    return line[len(_VERSION_PREFIX):].split('"', 1)[0]
    except OSError:
        return None
    return None
