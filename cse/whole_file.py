"""Files written whole or not at all: under a temporary name beside the target, renamed onto it once complete.

A process killed mid-write (SIGKILL, a power cut) leaves its temporary file behind, named after its host and
process (`.NAME.cse-tmp-HOST-PID-TOKEN`); the next write of the same file removes those of processes that are gone.
"""

import glob
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cse.writer_identity import host_name, process_alive

_TEMPORARY = ".{name}.cse-tmp-"


@contextmanager
def written_whole(path: Path) -> Iterator[Path]:
    """A fresh temporary path beside `path` to write; renamed onto `path` when the block ends without an exception.

    Beside it, in the same folder, so that the rename is atomic: a reader sees the old file or the complete new one,
    never a part. Whatever is left under the temporary name is removed, so a failure (an exception, a full disk)
    leaves `path` as it was. Processes writing the same `path` each get their own temporary name; the last rename
    wins.
    """
    remove_leftovers(path)
    prefix = _TEMPORARY.format(name=path.name)
    temporary = path.with_name(f"{prefix}{host_name()}-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def remove_leftovers(path: Path) -> None:
    """Remove the temporary files of `path` that processes of this host, now gone, left (best effort)."""
    prefix = _TEMPORARY.format(name=path.name)
    pattern = re.compile(rf"^{re.escape(prefix)}(?P<host>[A-Za-z0-9]*)-(?P<pid>\d+)-[0-9a-f]{{8}}$")
    for entry in path.parent.glob(glob.escape(prefix) + "*"):
        match = pattern.match(entry.name)
        if match is None or match["host"] != host_name() or process_alive(int(match["pid"])) or entry.is_dir():
            continue
        try:
            entry.unlink()
        except OSError:
            continue
