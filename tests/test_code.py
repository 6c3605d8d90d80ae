"""The code base's own rules, checked on every run: lint, strict typing, the import contracts, no cycle.

- `ruff check` over every folder of Python;
- `mypy --strict` over the installed package (`pip install .`, as the README's test command does: the
  package ships `py.typed`, so mypy checks it as any typed library). An editable install maps the
  folders with an import hook that mypy cannot follow, so there the test says so and skips;
- the import-linter contracts in pyproject.toml (the core never imports a face; its layers);
- no import cycle anywhere, lazy and type-checking imports included;
- `core/locations.py`, `core/api/protocol.py`, `core/errors.py` and `core/states.py` import only the
  standard library (the client commands load them on a 100 ms budget; `core/formats.py` adds only
  `states`, see tests/core/test_states.py).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STDLIB_ONLY = ("core/locations.py", "core/api/protocol.py", "core/errors.py", "core/states.py")


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.skip(f"{name} is not installed (pip install '.[test]')")
    return str(path)


def _run(*argv: str, cwd: Path = ROOT, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_ruff() -> None:
    result = _run(_tool("ruff"), "check", "--no-cache", "core", "cli", "tui", "themes", "tests", "bench",
                  "screenshots")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict(tmp_path: Path) -> None:
    import pmtop.core

    installed = Path(pmtop.core.__file__).resolve().parent
    if installed == ROOT / "core":
        pytest.skip("an editable install: mypy cannot follow its import hook; the README's `pip install .` "
                    "(CI) checks the installed package")
    result = _run(_tool("mypy"), "--strict", "--cache-dir", str(tmp_path / "cache"), "--python-version", "3.11",
                  "-p", "pmtop.core", "-p", "pmtop.cli", "-p", "pmtop.tui", cwd=tmp_path)
    site = str(installed.parent)  # show the errors at the repository's paths, not site-packages'
    assert result.returncode == 0, result.stdout.replace(site + "/", "").replace(site, "")


def test_import_contracts() -> None:
    result = _run(_tool("lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "BROKEN" not in result.stdout


def test_no_import_cycle() -> None:
    """Tarjan's strongly connected components over every import, lazy and TYPE_CHECKING ones too."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("pmtop.core", "pmtop.cli", "pmtop.tui")
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in graph.modules:
                continue
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("path", STDLIB_ONLY)
def test_stdlib_only(path: str) -> None:
    tree = ast.parse((ROOT / path).read_text())
    outside = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = ["." if node.level else (node.module or "")]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if name == "." or top not in sys.stdlib_module_names:
                outside.append(name)
    assert not outside, f"{path} imports beyond the standard library: {outside}"


def test_the_tools_are_installed() -> None:
    """The test extra brings the tools above, so that none of those tests can quietly skip."""
    for tool in ("ruff", "mypy", "lint-imports"):
        assert (BIN / tool).exists() or shutil.which(tool), tool


def test_every_package_ships() -> None:
    """Every folder with an `__init__.py` is listed in pyproject's `packages` (an editable install
    finds a forgotten one anyway; the wheel CI and users install would silently lack it)."""
    import tomllib

    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs = {prefix: Path(folder) for prefix, folder in setup["package-dir"].items()}
    found = {
        ".".join((prefix, *init.parent.relative_to(ROOT / folder).parts))
        for prefix, folder in dirs.items()
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert found == set(setup["packages"]), "pyproject.toml [tool.setuptools] packages differ from the source tree"
