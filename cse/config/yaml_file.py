"""Read a `--config` YAML file strictly: a syntax error, a key given twice, no settings at all, or a section that is
not a mapping is one line naming the file (and line).

jsonargparse reports a YAML syntax error over several lines without the file's name (`in "<unicode string>"`), a key
given twice silently takes its last value, an empty file is `Unexpected config:`, and a section given a value
(`trainer: 3`) replaces the whole section: a traceback, a section silently dropped (`data: [1, 2]`) or a refusal of a
key the file never named (`checkpoint: 5`); a section given a string is read from that file, and one that names none
was `Unable to load config 'abc'`.
"""

from collections.abc import Hashable
from pathlib import Path

import yaml

from cse.data.text_file import first_bad_line_error
from cse.errors import InputError

# `cse fit`'s settings that are groups of keys: its Trainer, model, data and the callbacks that take settings (the
# mappings of `cse fit --print_config`).
SECTIONS = ("trainer", "model", "data", "checkpoint", "periodic_checkpoint", "non_finite_guard")


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that holds a key twice."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # PyYAML refuses it itself, with its line
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.MarkedYAMLError(
                    problem=f"key '{key}' is given twice (first on line {seen[key]})", problem_mark=key_node.start_mark
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def check_config_file(path: str) -> None:
    """Raise `InputError` naming the file and line when `path` is not a YAML mapping with unique keys, holds no
    settings, or gives a section of `SECTIONS` a value other than its keys.

    A value that is not a file (an inline `--config '{...}'`) is left to jsonargparse.
    """
    file = Path(path)
    if not file.is_file():
        return
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise first_bad_line_error(file, "--config") from None
    except OSError as error:
        raise InputError(f"--config {path}: cannot be read ({error})") from None
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        content = None if node is None else loader.construct_document(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(part for part in (error.context, error.problem) if part)
        raise InputError(f"--config {path}{where}: {problem}") from None
    except yaml.YAMLError as error:
        raise InputError(f"--config {path}: not valid YAML ({' '.join(str(error).split())})") from None
    finally:
        loader.dispose()
    if content is None:
        raise InputError(f"--config {path}: holds no settings (an empty file, or only comments)")
    if not isinstance(content, dict):
        raise InputError(
            f"--config {path}: expected a mapping of keys (trainer:, model:, data:, ...), got a "
            f"{type(content).__name__}"
        )
    for key_node, _ in node.value:
        _check_section(path, key_node, content)


def _check_section(path: str, key_node: yaml.Node, content: dict) -> None:
    """A one-line `InputError` naming the line when a section of `SECTIONS` has a value other than a mapping of its
    keys, or a string naming a file (jsonargparse reads the section from it, a relative path beside `path`)."""
    key, value = key_node.value, content[key_node.value]
    where = f"--config {path} line {key_node.start_mark.line + 1}: {key}"
    if key not in SECTIONS or isinstance(value, dict):
        return
    if isinstance(value, str):
        if not (Path(path).parent / value).is_file():  # a relative path is read from the config's folder
            raise InputError(
                f"{where}: {value!r} is no file beside {Path(path).name} (a section given a string is read from that "
                f"YAML file); give its settings as indented `key: value` lines below `{key}:`"
            )
        return
    given = "nothing" if value is None else repr(value)
    raise InputError(
        f"{where}: expected a mapping of its settings (indented `key: value` lines below `{key}:`), got {given}"
    )
