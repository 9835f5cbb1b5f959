"""The layout rules, checked on the source: what each package may import.

Read with ``ast`` rather than by importing, so that an import inside a function
counts as much as one at the top of the module.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, name: str | None = None) -> set[str]:
    """Every module ``path`` (the module ``name``) imports, absolute; ``from a import
    b`` gives ``a`` and ``a.b`` (``b`` may be a submodule)."""
    name = name or _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def modules_of(package: str) -> list[Path]:
    directory = ROOT.joinpath(*package.split("."))
    paths = sorted(directory.rglob("*.py"))
    assert paths, f"no modules found under {directory}"
    return paths


def violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{_module_name(path)} imports {module}"
        for path in modules_of(package)
        for module in sorted(imported_modules(path))
        if any(module == f or module.startswith(f + ".") for f in forbidden)
    ]


def test_layering_import_walker_sees_every_form_of_import(tmp_path: Path) -> None:
    # The walker itself, on a module written for it: a test of the rules below is
    # only as good as what the walker finds.
    module = tmp_path / "probe.py"
    module.write_text(
        "import portal.services.a\n"
        "from portal.services import b\n"
        "from . import extensions\n"
        "from .http import tus\n"
        "def f():\n"
        "    from portal.http.edge import x\n"
    )
    found = imported_modules(module, "portal.probe")
    assert {
        "portal.services.a",
        "portal.services",
        "portal.services.b",
        "portal.extensions",
        "portal.http.tus",
        "portal.http.edge",
        "portal.http.edge.x",
    } <= found


def test_layering_models_import_no_service_http_or_blueprint() -> None:
    forbidden = (
        "portal.services",
        "portal.http",
        "portal.jobs",
        "portal.staff",
        "portal.api",
        "portal.public",
    )
    assert violations("portal.models", forbidden) == []


def test_layering_keyring_imports_no_portal_module() -> None:
    # The keyring is below the models: it may not reach back up into the portal.
    found = imported_modules(ROOT / "portal" / "keyring.py")
    assert sorted(m for m in found if m.startswith("portal")) == []


def test_layering_api_imports_nothing_of_the_staff_pages() -> None:
    assert violations("portal.api", ("portal.staff",)) == []


def test_layering_staff_pages_import_nothing_of_the_api() -> None:
    assert violations("portal.staff", ("portal.api",)) == []


def test_layering_cli_modules_do_not_import_each_other_in_a_loop() -> None:
    cli = imported_modules(ROOT / "portal" / "cli.py")
    security = imported_modules(ROOT / "portal" / "cli_security.py")
    assert "portal.cli_security" in cli
    assert not any(m == "portal.cli" or m.startswith("portal.cli.") for m in security)
