"""The package arrows point one way: ``engine`` sits below everything and imports no other siambench package."""

import ast
from pathlib import Path

import siambench

ROOT = Path(siambench.__file__).parent


def siambench_imports(source: str, package: tuple[str, ...]) -> set[str]:
    """The siambench modules ``source`` imports, relative imports resolved from ``package``."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            if node.module:
                found.add(".".join([*base, node.module]))
            else:
                found |= {".".join([*base, alias.name]) for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {name for name in found if name.startswith("siambench")}


def test_engine_imports_only_itself_and_errors():
    allowed = ("siambench.engine", "siambench.errors")
    for path in sorted((ROOT / "engine").glob("*.py")):
        imported = siambench_imports(path.read_text(), ("siambench", "engine"))
        outside = {name for name in imported if not name.startswith(allowed)}
        assert not outside, f"engine/{path.name} imports {sorted(outside)}"


def test_the_check_resolves_relative_imports():
    source = "from ..data import build_dataset\nfrom . import dist\nfrom .io import save_json\nimport torch\n"
    assert siambench_imports(source, ("siambench", "engine")) == {
        "siambench.data", "siambench.engine.dist", "siambench.engine.io"}


def test_real_data_readers_do_not_import_the_synthetic_generator():
    """Only the embedded datasets (``shapes*.py``) build on the shapes generator."""
    for path in sorted((ROOT / "data").glob("*.py")):
        if path.name.startswith("shapes"):
            continue
        imported = siambench_imports(path.read_text(), ("siambench", "data"))
        assert "siambench.data.shapes" not in imported, f"data/{path.name} imports the shapes generator"
