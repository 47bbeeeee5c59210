"""Read a `--config` YAML file strictly: a syntax error or a key given twice is one line naming the file and line.

jsonargparse reports a YAML syntax error over several lines without the file's name (`in "<unicode string>"`), and
a key given twice silently takes its last value.
"""

from collections.abc import Hashable
from pathlib import Path

import yaml

from cse.errors import InputError


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
    """Raise `InputError` naming the file and line when `path` is not a YAML mapping with unique keys.

    A value that is not a file (an inline `--config '{...}'`) is left to jsonargparse.
    """
    file = Path(path)
    if not file.is_file():
        return
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"--config {path}: cannot be read as UTF-8 text ({error})") from None
    try:
        content = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(part for part in (error.context, error.problem) if part)
        raise InputError(f"--config {path}{where}: {problem}") from None
    except yaml.YAMLError as error:
        raise InputError(f"--config {path}: not valid YAML ({' '.join(str(error).split())})") from None
    if content is not None and not isinstance(content, dict):
        raise InputError(
            f"--config {path}: expected a mapping of keys (trainer:, model:, data:, ...), got a "
            f"{type(content).__name__}"
        )
