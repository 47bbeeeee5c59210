"""Arguments shared by the commands that read text pairs and write a training file (`cse mine`, `cse label`)."""

from pathlib import Path

import yaml

from cse.commands.output_file import check_output_file
from cse.errors import InputError

FORMATS = {".csv": ",", ".tsv": "\t", ".jsonl": None}  # output suffix -> delimiter (None: JSON lines)


def pair_columns(text: str | None, roles: tuple[str, str]) -> dict[str, str] | None:
    """`--columns` as a mapping {sent0: ..., sent1: ...} (JSON or YAML); None when not given.

    Raises:
        InputError: not such a mapping; `roles` names what sent0 and sent1 are in the message.
    """
    if text is None:
        return None
    try:
        columns = yaml.safe_load(text)  # JSON, or YAML's {sent0: q, sent1: a}
    except yaml.YAMLError:
        columns = None
    if not isinstance(columns, dict) or not all(isinstance(value, str) for value in columns.values()):
        raise InputError(f'--columns: expected a mapping such as \'{{"sent0": "q", "sent1": "a"}}\', got {text!r}')
    if set(columns) != {"sent0", "sent1"}:
        raise InputError(
            f"--columns: name exactly sent0 ({roles[0]}) and sent1 ({roles[1]}), got {', '.join(map(str, columns))}"
        )
    return columns


def checked_output(output: Path, inputs: list[str | None], what: str) -> Path:
    """`output` if it is a `FORMATS` file that `check_output_file` passes; `what` names its rows.

    Raises:
        InputError: a bad suffix, a missing directory, a directory, one of the inputs or inside one.
    """
    if output.suffix not in FORMATS:
        raise InputError(f"output {output}: must end in {', '.join(FORMATS)} (cse fit reads each)")
    check_output_file(output, "output", inputs, what)
    return output
