"""What the README states of the code matches the code: the `model.*` and `data.*` key tables ("Configuration keys")
the signatures they copy; the recipe figures (RoBERTa table, supervised clipping) the shipped recipes; the lists of
commands, of keys a resume checks, and CI's lint their sources in the code.

Each table must list exactly the keys a user can set (those `cse fit --print_config` shows: the signature's, less the
ones the CLI links from other keys), each with the signature's default. A default cell holds `required` (no default),
`none` (None), or one backticked YAML value per key of its row (`0.05`, `3.0e-5`, `false`, `cls`), compared as
parsed values: `0.05` equals 0.05, `false` is False and not 0, `0` is not False.
"""

import inspect
import re
import typing
from pathlib import Path

import pytest
import yaml

from cse.cli import COMMANDS
from cse.config.recipes import recipe_dir
from cse.data.datamodule import SimCSEDataModule
from cse.models.simcse import SimCSE
from cse.runs.resumed_settings import DATA_KEYS_FIXED, MODEL_KEYS_FREE

README = Path(__file__).resolve().parents[1] / "README.md"
REQUIRED = object()  # a parameter without a default
# Set by the CLI from other keys (`parser.link_arguments` in the CLI), so neither shown nor settable: not in the table.
LINKED = {
    "data": {
        "tokenizer_name_or_path",  # model.model_name_or_path
        "mlm_probability",  # model.mlm_probability when model.do_mlm, else none
        "pad_to_max_length",  # model.compile
        "word_ids",  # model.objective
    }
}
SIGNATURES = {"model": SimCSE.__init__, "data": SimCSEDataModule.__init__}


def _table(section: str) -> dict[str, str]:
    """Key -> default cell of the table that follows the line naming (`section.*`) under "Configuration keys"."""
    text = README.read_text(encoding="utf-8").split("### Configuration keys", 1)[1]
    lines = text.split(f"(`{section}.*`)", 1)[1].splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("|"))
    end = next((index for index, line in enumerate(lines[start:], start) if not line.startswith("|")), len(lines))
    header, separator, *rows = lines[start:end]
    assert header.split("|")[1:3] == [" key ", " default "] and set(separator) <= set("|-"), header
    table = {}
    for row in rows:
        keys_cell, default_cell = (cell.strip() for cell in row.split("|")[1:3])
        keys = re.fullmatch(r"`\w+`(, `\w+`)*", keys_cell) and re.findall(r"`(\w+)`", keys_cell)
        assert keys, f"{section} table: key cell {keys_cell!r} is not `key` or `key1`, `key2`, ..."
        defaults = [cell.strip() for cell in default_cell.split(",")]
        assert len(defaults) == len(keys), f"{section} table: {keys_cell} has {len(defaults)} defaults: {default_cell}"
        for key, default in zip(keys, defaults, strict=True):
            assert key not in table, f"{section}.{key} is listed twice"
            table[key] = default
    return table


def _parse(cell: str) -> object:
    """The value a default cell stands for."""
    if cell == "required":
        return REQUIRED
    if cell in ("none", "`none`"):
        return None
    literal = re.fullmatch(r"`([^`]+)`", cell)
    if literal is None:
        raise AssertionError(f"default {cell!r}: expected required, none or one `value`")
    return yaml.safe_load(literal[1])


def _same(table_value: object, default: object) -> bool:
    """Equal as values, with bool kept apart from int (False == 0 in Python) and strings kept apart from numbers."""
    if table_value is REQUIRED or default is REQUIRED or table_value is None or default is None:
        return table_value is default
    if isinstance(table_value, bool) or isinstance(default, bool):
        return type(table_value) is type(default) and table_value == default
    if isinstance(default, int | float):
        return isinstance(table_value, int | float) and float(table_value) == float(default)
    return table_value == default


def _signature(section: str) -> dict[str, object]:
    parameters = list(inspect.signature(SIGNATURES[section]).parameters.values())[1:]  # after self
    return {p.name: REQUIRED if p.default is inspect.Parameter.empty else p.default for p in parameters}


@pytest.mark.parametrize("section", ["model", "data"])
def test_table_lists_every_settable_key_with_the_signature_default(section):
    table, signature = _table(section), _signature(section)
    settable = {key: default for key, default in signature.items() if key not in LINKED.get(section, set())}
    assert LINKED.get(section, set()) <= signature.keys(), "a linked key is no longer in the signature"
    assert sorted(set(settable) - set(table)) == [], f"keys of the {section} signature missing from the README table"
    assert sorted(set(table) - set(settable)) == [], f"keys in the README {section} table that cannot be set"
    wrong = {key: (cell, settable[key]) for key, cell in table.items() if not _same(_parse(cell), settable[key])}
    assert wrong == {}, f"README {section} defaults (table cell, signature default) that differ"


def test_table_keys_are_the_keys_the_cli_shows(run_cse):
    """The linked keys above are exactly the ones the CLI hides: `--print_config` shows every other key."""
    code, out, err = run_cse(["fit", "--config", "quickstart", "--print_config"])
    assert code == 0, err
    config = yaml.safe_load(out)
    for section in SIGNATURES:
        assert set(config[section]) == set(_signature(section)) - LINKED.get(section, set()), section


@pytest.mark.parametrize(
    ("cell", "default", "same"),
    [
        ("`0.05`", 0.05, True),
        ("`3.0e-5`", 3.0e-5, True),
        ("`3e-5`", 3.0e-5, False),  # YAML 1.1 reads 3e-5 as a string, as the recipes would
        ("`false`", False, True),
        ("`0`", False, False),
        ("`false`", 0, False),
        ("`0`", 0.0, True),
        ("none", None, True),
        ("`none`", None, True),
        ("none", "none", False),
        ("required", REQUIRED, True),
        ("required", None, False),
        ("`cls`", "cls", True),
        ("`8`", "8", False),
    ],
)
def test_default_cells_compare_as_values(cell, default, same):
    assert _same(_parse(cell), default) is same


def _markdown_table(after: str) -> list[dict[str, str]]:
    """Rows of the first table after the README line containing `after`, as header -> cell."""
    lines = README.read_text(encoding="utf-8").split(after, 1)[1].splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("|"))
    end = next((index for index, line in enumerate(lines[start:], start) if not line.startswith("|")), len(lines))
    header, _, *rows = ([cell.strip() for cell in line.strip("|").split("|")] for line in lines[start:end])
    return [dict(zip(header, row, strict=True)) for row in rows]


def _recipe_value(recipe: dict, section: str, key: str) -> object:
    """`section.key` of a shipped recipe, or the signature default it leaves out."""
    given = recipe.get(section) or {}
    return given[key] if key in given else _signature(section)[key]


def test_roberta_recipe_table_is_the_recipes():
    """The RoBERTa table's settings are the shipped recipes' (the signature default where a recipe gives none)."""
    rows = _markdown_table("### The paper's RoBERTa recipes")
    assert rows, "no RoBERTa recipe table"
    poolers = {"`cls`, `mlp_only_train`": ("cls", True), "`cls` with the MLP kept": ("cls", False)}
    for row in rows:
        name = row["recipe"].strip("`")
        recipe = yaml.safe_load((recipe_dir() / f"{name}.yaml").read_text(encoding="utf-8"))
        described = {
            "model": row["model"].strip("`"),
            "data": {"wiki1m": "wiki1m", "NLI triplets": "nli"}[row["data"]],
            "batch": int(row["batch"]),
            "lr": float(row["lr"]),
            "epochs": int(row["epochs"]),
            "pooler": poolers[row["pooler"]],
            "clipping": float(row["clipping"].split()[0]),
        }
        shipped = {
            "model": recipe["model"]["model_name_or_path"],
            "data": next(word for word in ("wiki1m", "nli") if word in _recipe_value(recipe, "data", "train_file")),
            "batch": _recipe_value(recipe, "data", "batch_size"),
            "lr": float(_recipe_value(recipe, "model", "learning_rate")),
            "epochs": recipe["trainer"]["max_epochs"],
            "pooler": (_recipe_value(recipe, "model", "pooler_type"), _recipe_value(recipe, "model", "mlp_only_train")),
            "clipping": float(recipe["trainer"]["gradient_clip_val"]),
        }
        assert described == shipped, name


def _choices(annotation: object) -> list[str]:
    """The string values a `Literal` in a parameter's annotation allows (inside `X | None`, `bool | Literal`)."""
    if typing.get_origin(annotation) is typing.Literal:
        return [value for value in typing.get_args(annotation) if isinstance(value, str)]
    return [value for argument in typing.get_args(annotation) for value in _choices(argument)]


@pytest.mark.parametrize("section", ["model", "data"])
def test_table_names_every_choice_of_a_key(section):
    """A key that takes one of several names (`pooler_type`, `tokenize`, ...) has each of them in its meaning cell."""
    meanings = {row["key"]: row["meaning"] for row in _markdown_table(f"(`{section}.*`)")}
    parameters = list(inspect.signature(SIGNATURES[section]).parameters.values())[1:]
    missing = {
        p.name: [choice for choice in _choices(p.annotation) if f"`{choice}`" not in meanings[f"`{p.name}`"]]
        for p in parameters
        if _choices(p.annotation)
    }
    assert {key: choices for key, choices in missing.items() if choices} == {}, f"README {section} table"


def test_ci_command_runs_the_pre_commit_lint():
    """The README's command 2, which `.ci/run` runs, lints as the pre-commit hooks do: each hook's command over `.`."""
    lines = README.read_text(encoding="utf-8").splitlines()
    command = lines[next(index for index, line in enumerate(lines) if line.startswith("# 2. ")) + 1]
    config = yaml.safe_load((README.parent / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = [hook["entry"].replace(" --force-exclude", "") for repo in config["repos"] for hook in repo["hooks"]]
    assert [hook for hook in hooks if f"&& {hook} . &&" not in command] == [], command


def test_supervised_simcse_recipes_clip_as_the_gpu_table_says():
    """The clipping row of *On a GPU*: every `sup-simcse-*` recipe clips at the value it names."""
    said = re.search(r"the supervised SimCSE recipes \(`sup-simcse-\*`\) clip at ([\d.]+)", README.read_text("utf-8"))
    assert said, "the clipping row no longer names the supervised recipes' clip"
    recipes = sorted(recipe_dir().glob("sup-simcse-*.yaml"))
    clips = {path.stem: yaml.safe_load(path.read_text("utf-8"))["trainer"]["gradient_clip_val"] for path in recipes}
    assert len(clips) >= 2 and set(clips.values()) == {float(said[1])}, clips


def test_resuming_names_the_settings_a_resume_checks():
    """*Resuming* lists the `model.*` keys a resume may change and the `data.*` keys it may not, as the code does."""
    text = " ".join(README.read_text("utf-8").split("**Resuming**", 1)[1].split("must equal the", 1)[0].split())
    said = re.search(r"any `model\.\*` key but (.+?); `data\.(.+?)\)", text)
    assert said, "the Resuming paragraph no longer lists the keys"
    assert re.findall(r"`(\w+)`", said[1]) == list(MODEL_KEYS_FREE)
    assert re.findall(r"`(\w+)`", "`" + said[2]) == list(DATA_KEYS_FIXED)


def test_development_names_every_command():
    """The Development paragraph on `cse/commands/` names exactly the commands `cse --help` lists."""
    text = " ".join(
        README.read_text("utf-8").split("- `cse/commands/`: one module per `cse X` command (", 1)[1].split()
    )
    named = re.findall(r"`(\w+)`", text.split(")", 1)[0])
    assert sorted(named) == sorted(COMMANDS)
