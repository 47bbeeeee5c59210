"""Where an export may be written: a new directory, or with `--overwrite` a previous `cse` export, nothing else.

An export replaces its directory whole, so before it does, this checks that nothing but what `cse` wrote is lost:

- every export lists the files it wrote in `.cse_export.json`; `--overwrite` replaces a directory with that list and
  no other file in it (or an empty directory), and keeps anything else: a run folder, a model directory, an export
  of an earlier `cse` or one a user has added files to;
- whatever the flags, the export never replaces a directory that holds what it reads (the checkpoint, the run
  folder), the current directory, the home directory or a folder above them, nor a path that is a symbolic link; nor
  does it write into a run's `checkpoints/` folder.
"""

import json
import os
from collections.abc import Iterable
from pathlib import Path

from cse.errors import InputError
from cse.export.pooling import CSE_CONFIG_NAME
from cse.runs.layout import CHECKPOINT_DIR, METRICS_FILE

FILE_LIST_NAME = ".cse_export.json"
RUN_FOLDER_FILES = (CHECKPOINT_DIR, METRICS_FILE, "hparams.yaml")  # what a `cse fit` run folder holds
SHOWN_FILES = 3  # files named in an error line, of those that would be lost


def check_export_target(out_dir: str | Path, overwrite: bool, sources: Iterable[str | Path] = ()) -> None:
    """Raise `InputError` unless writing the export to `out_dir` loses nothing but a previous export.

    Args:
        out_dir: the directory the export would create or replace.
        overwrite: whether a previous export there may be replaced.
        sources: what the export reads (checkpoint, run folder): `out_dir` must not hold them.
    """
    out_dir = Path(out_dir)
    where = f"export directory {out_dir}"
    if out_dir.is_symlink():
        raise InputError(f"{where}: is a symbolic link (to {os.readlink(out_dir)}); give the directory's own path")
    real = Path(os.path.realpath(out_dir))
    for source in map(Path, sources):
        if _holds(real, source):
            raise InputError(f"{where}: holds {source}, which the export reads; choose another directory")
        if source.parent.name == CHECKPOINT_DIR and _holds(Path(os.path.realpath(source.parent)), real):
            raise InputError(f"{where}: is in the run's {CHECKPOINT_DIR} folder, which Lightning manages")
    for name, place in (("the current directory", Path.cwd()), ("the home directory", _home())):
        if place is not None and _holds(real, place):
            which = "is" if real == Path(os.path.realpath(place)) else "holds"
            raise InputError(f"{where}: {which} {name}; choose a new directory for the export")
    if not os.path.lexists(out_dir):
        return
    if not out_dir.is_dir():
        raise InputError(f"{where}: is a file")
    lost = _what_overwriting_loses(out_dir)
    if lost is None and not overwrite:
        raise InputError(f"{where}: already exists; pass --overwrite to replace it")
    if lost is not None:
        raise InputError(f"{where}: {lost}")


def write_file_list(directory: Path) -> None:
    """Write `.cse_export.json`, the list of the files in `directory`: what a later `--overwrite` may replace."""
    files = sorted(path.relative_to(directory).as_posix() for path in _files(directory))
    (directory / FILE_LIST_NAME).write_text(json.dumps({"written_by": "cse export", "files": files}, indent=2) + "\n")


def _what_overwriting_loses(directory: Path) -> str | None:
    """None when `directory` is empty or a previous export with only its own files, else why it must stay."""
    if not any(directory.iterdir()):
        return None
    keep = "--overwrite replaces only a previous cse export; choose another directory"
    if any((directory / name).exists() for name in RUN_FOLDER_FILES) or any(directory.glob("*.ckpt")):
        return f"is a training run folder, not a cse export; {keep}"
    listed = _listed_files(directory)
    if listed is None:
        if (directory / CSE_CONFIG_NAME).is_file():
            return f"has no {FILE_LIST_NAME} (an export of an earlier cse, or a copy) to tell what cse wrote; {keep}"
        return f"is not a cse export (no {FILE_LIST_NAME}); {keep}"
    others = sorted(
        relative
        for path in _files(directory)
        if (relative := path.relative_to(directory).as_posix()) not in listed and relative != FILE_LIST_NAME
    )
    if not others:
        return None
    more = f" and {len(others) - SHOWN_FILES} more" if len(others) > SHOWN_FILES else ""
    return (
        f"holds files cse did not write ({', '.join(others[:SHOWN_FILES])}{more}); --overwrite replaces only what "
        "cse exported: move them out or choose another directory"
    )


def _listed_files(directory: Path) -> set[str] | None:
    """The files `.cse_export.json` lists, None when there is no readable list."""
    try:
        listed = json.loads((directory / FILE_LIST_NAME).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {name for name in listed if isinstance(name, str)} if isinstance(listed, list) else None


def _files(directory: Path) -> list[Path]:
    """Files, symbolic links and empty folders under `directory`, symbolic links not followed."""
    found = []
    for root, folders, files in os.walk(directory):
        found += [Path(root, name) for name in files]
        found += [Path(root, name) for name in folders if os.path.islink(os.path.join(root, name))]
        if not folders and not files and Path(root) != directory:
            found.append(Path(root))
    return found


def _holds(directory: Path, path: Path) -> bool:
    """Whether real path `directory` is `path` or a folder above it (symbolic links resolved)."""
    return Path(os.path.realpath(path)).is_relative_to(directory)


def _home() -> Path | None:
    try:
        return Path.home()
    except RuntimeError:  # no HOME and no passwd entry
        return None
