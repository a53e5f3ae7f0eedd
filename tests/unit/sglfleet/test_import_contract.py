"""The import contract (pyproject.toml [tool.importlinter], docs/architecture.md) holds.

- import-linter's contracts: the controller's layers run one way, the controller never imports the
  rehearsal engine or the staging tool, the SGLang contract and the node-side packages stand alone;
- no import cycle between any two modules, function-local imports included;
- a function-local import only with a `# lazy: <reason>` line right above it (or above the run
  of imports it belongs to).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SRC = ROOT / "src"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(src: Path, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(config), "--no-cache"],
        capture_output=True,
        text=True,
        check=False,
        cwd=config.parent,
        env={**os.environ, "PYTHONPATH": str(src)},
    )


def test_the_import_contracts_are_kept() -> None:
    proc = _lint_imports(SRC, ROOT / "pyproject.toml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Contracts: 5 kept, 0 broken." in proc.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # the domain reaching up into a service (a function-local import counts too)
        ("sglfleet/topology.py", "    from sglfleet.deploy import load_cluster\n", "layers"),
        # the controller importing the rehearsal engine
        ("sglfleet/validate.py", "    import sglfleet_rehearsal.engine\n", "node-side"),
        # the SGLang contract importing the controller
        ("sglfleet_sglang/catalog.py", "    import sglfleet.models\n", "stands alone"),
    ],
)
def test_the_contract_refuses_an_import_against_it(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    src = tmp_path / "src"
    shutil.copytree(SRC, src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = src / module
    target.write_text(target.read_text() + f"\n\ndef _violation() -> None:\n{line}")
    proc = _lint_imports(src, tmp_path / "pyproject.toml")
    assert proc.returncode != 0, proc.stdout
    broken = proc.stdout.split("Broken contracts")[-1]
    assert contract in broken, broken


def _modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every project module `name` imports, at module level or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def test_no_module_imports_itself_through_others() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    # Tarjan's strongly connected components: a component of two or more modules is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for succ in graph[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    assert cycles == []


def test_every_function_local_import_says_why() -> None:
    unexplained = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text()
        lines = text.splitlines()
        tree = ast.parse(text)
        local = {
            id(node)
            for function in ast.walk(tree)
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
            for node in ast.walk(function)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and id(node) in local:
                # one reason serves a run of imports: look above the imports right before this one
                row = node.lineno - 2
                while row > 0 and lines[row].strip().startswith(("from ", "import ")):
                    row -= 1
                above = lines[row].strip() if row >= 0 else ""
                if not above.startswith("# lazy: ") or len(above) <= len("# lazy: "):
                    unexplained.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert unexplained == []
