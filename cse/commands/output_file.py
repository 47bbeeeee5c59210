"""The check, before a command's run, that the file it will write can be written and is none of the run's inputs."""

from collections.abc import Iterable
from pathlib import Path

from cse.errors import InputError
from cse.whole_file import write_target


def check_output_file(output: Path, name: str, inputs: Iterable[str | Path | None], what: str) -> None:
    """Raise `InputError` unless `output` is a file in an existing folder that touches no input of this run.

    A symbolic link is checked, as it is written (`cse.whole_file.written_whole`), at the file it leads to: that file
    is replaced and the link kept.

    Args:
        output: the file to write (whole, through `cse.whole_file.written_whole`, which creates no folders).
        name: how messages name the file (`output`, `--json`).
        inputs: the run's input files and directories; `output` may be none of them nor lie inside a directory among
            them (a model or data directory). None, or a path that does not exist (a hub id), is skipped.
        what: what the file holds (`triplets`, `report`), in the message asking for another file.
    """
    written = write_target(output)
    if written.is_symlink():
        raise InputError(f"{name} {output}: is a loop of symbolic links; write the {what} to another file")
    leads = f" (where the symbolic link leads: {written})" if written != output else ""
    if not written.parent.is_dir():
        raise InputError(f"{name} {output}: directory {written.parent} does not exist{leads}")
    if written.is_dir():
        raise InputError(f"{name} {output}: is a directory{leads}")
    target = written.resolve()
    for source in inputs:
        path = None if source is None else Path(source).expanduser()
        if path is None or not path.exists():
            continue
        if path.resolve() == target:
            raise InputError(f"{name} {output}: is an input of this run; write the {what} to another file")
        if path.is_dir() and target.is_relative_to(path.resolve()):
            raise InputError(f"{name} {output}: is inside {source}, an input of this run; write the {what} outside it")
