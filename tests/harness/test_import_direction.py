"""The package's imports run one way (STYLE 1): the harness never imports the task or trainer plugins or the command
line, its subpackages import only from the layers above them (as score_bench/harness/__init__.py lists them), and no
module imports a private (`_name`) module or name of another package. Read from the source with ast, so lazy imports
inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "score_bench"
LAYERS = ("contracts", "runtime", "grading", "generation", "evaluation", "training", "reports")
"""The harness subpackages, each importing only from itself and those before it."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(path: Path) -> str:
    """The package a module belongs to: its directory, as a dotted name."""
    return ".".join(path.relative_to(PACKAGE.parent).parent.parts)


def imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, names taken from it) for every import statement in the module, absolute names
    (a relative import is resolved against the module's package)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package_of(path).split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.append((node.lineno, base, [alias.name for alias in node.names]))
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))
OWN = [(path, line, target, names) for path in MODULES for line, target, names in imports(path)
       if target == "score_bench" or target.startswith("score_bench.")]


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(PACKAGE.parent)}:{line}"


def test_the_modules_are_found():
    assert len(MODULES) > 50 and any(target.startswith("score_bench.harness.") for _, _, target, _ in OWN)


def test_the_harness_imports_only_the_harness():
    """Tasks, trainers, the command line, the demo and the embedded model depend on the harness, never the reverse."""
    wrong = [f"{where(path, line)} imports {target}" for path, line, target, _ in OWN
             if module_name(path).startswith("score_bench.harness")
             and not (target == "score_bench.harness" or target.startswith("score_bench.harness."))]
    assert wrong == []


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[2]) if len(parts) > 2 and parts[:2] == ["score_bench", "harness"] \
        and parts[2] in LAYERS else None


def test_every_harness_module_is_in_a_layer():
    loose = [str(path.relative_to(PACKAGE.parent)) for path in MODULES
             if module_name(path).startswith("score_bench.harness.") and layer(module_name(path)) is None]
    assert loose == []


def test_harness_layers_import_only_the_layers_above():
    wrong = []
    for path, line, target, names in OWN:
        own = layer(module_name(path))
        if own is None:
            continue
        # `from score_bench.harness import evaluation` names the layer in the imported names
        targets = [f"{target}.{name}" for name in names] if target == "score_bench.harness" else [target]
        wrong += [f"{where(path, line)} ({LAYERS[own]}) imports {t}" for t in targets
                  if layer(t) is not None and layer(t) > own]
    assert wrong == []


def private_owner(target: str, names: list[str]) -> list[tuple[str, str]]:
    """(what is private, the package it belongs to) for each private module on the path of `target` and each
    private name imported from it."""
    parts = target.split(".")
    owned = [(".".join(parts[:i + 1]), ".".join(parts[:i])) for i, part in enumerate(parts)
             if part.startswith("_") and not part.startswith("__")]
    module_is_package = (PACKAGE.parent / Path(*parts) / "__init__.py").is_file()
    home = target if module_is_package else ".".join(parts[:-1])
    owned += [(f"{target}.{name}", home) for name in names if name.startswith("_") and not name.startswith("__")]
    return owned


def test_no_private_module_or_name_is_imported_across_packages():
    wrong = [f"{where(path, line)} imports {what} from outside {home}" for path, line, target, names in OWN
             for what, home in private_owner(target, names) if package_of(path) != home]
    assert wrong == []


@pytest.mark.parametrize("source, expected", [
    ("from score_bench.harness.grading._sandbox_codec import encode", [("score_bench.harness.grading._sandbox_codec",
                                                                       "score_bench.harness.grading")]),
    ("from score_bench.trainers.score import _validate", [("score_bench.trainers.score._validate",
                                                           "score_bench.trainers")]),
    ("from score_bench.harness.contracts import _hidden", [("score_bench.harness.contracts._hidden",
                                                           "score_bench.harness.contracts")]),
    ("from score_bench.harness.contracts.errors import InputError", []),
])
def test_private_imports_are_recognised(source, expected):
    """The checks above can fail: a private module, a private name and a private name of a package are each seen."""
    node = ast.parse(source).body[0]
    assert private_owner(node.module, [alias.name for alias in node.names]) == expected
