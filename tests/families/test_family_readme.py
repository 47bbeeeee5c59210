"""The README's "Encoder families" table states what tests/families runs: one row per family, in order, with its
inputs and pooler, the pooler of each `cse fit`, the poolers it takes, and tests that exist."""

import ast
import re
from pathlib import Path

from tiny_families import FAMILIES, FITTED

README = Path(__file__).resolve().parents[2] / "README.md"
HEADER = ["family (`model_type`)", "inputs, pooler, positions", "unsup", "sup (triplets)", "MLM", "poolers"]
HEADER += ["export equality", "eval"]


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    return text.split("### Encoder families", 1)[1].split("\n### ", 1)[0]


def _rows(section: str) -> list[list[str]]:
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header, separator, *rows = ([cell.strip() for cell in line.strip("|").split("|")] for line in lines)
    assert header == HEADER and set("".join(separator)) == {"-"}
    return rows


def _pooler_cell(pooling: tuple[str, bool]) -> str:
    pooler_type, mlp_only_train = pooling
    return f"`{pooler_type}` + `mlp_only_train`" if mlp_only_train else f"`{pooler_type}`"


def test_readme_table_is_the_tests_plan():
    rows = _rows(_section())
    assert [row[0] for row in rows] == [f"{family.title} (`{family.model_type}`)" for family in FAMILIES.values()]
    for row, (name, family) in zip(rows, FAMILIES.items(), strict=True):
        traits = row[1].split(", ")
        assert traits[:2] == [
            "token types" if family.token_type_ids else "no token types",
            "pooler" if family.has_pooler else "no pooler",
        ], name
        assert row[2:4] == [_pooler_cell(FITTED[name]["unsupervised"]), _pooler_cell(FITTED[name]["triplets"])], name
        assert row[5] == ("all 6" if family.has_pooler else "5 (`cls` keeping the MLP: error)"), name
        assert row[4] == row[6] == row[7] == "yes", name


def test_readme_names_tests_that_exist():
    tests = {
        node.name
        for path in Path(__file__).parent.glob("test_*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    }
    named = set(re.findall(r"`(test_\w+)`", _section()))
    assert named and named <= tests, named - tests
