"""Files written whole or not at all: under a temporary name beside the target, renamed onto it once complete.

A process killed mid-write (SIGKILL, a power cut) leaves its temporary file behind, named after its host and
process (`.NAME.cse-tmp-HOST-PID-TOKEN`); the next write of the same file removes those of processes that are gone.
A path that is a symbolic link is written through: the file it leads to is replaced (its temporary file beside it),
and the link stays, as a plain `open(path, "w")` would leave it.
"""

import glob
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cse.writer_identity import abandoned, temporary_sibling

_KIND = "tmp"  # the kind of temporary name, in `cse.writer_identity`'s scheme


@contextmanager
def written_whole(path: Path) -> Iterator[Path]:
    """A fresh temporary path beside `path` to write; renamed onto `path` when the block ends without an exception.

    Beside it, in the same folder, so that the rename is atomic: a reader sees the old file or the complete new one,
    never a part. Whatever is left under the temporary name is removed, so a failure (an exception, a full disk)
    leaves `path` as it was. Processes writing the same `path` each get their own temporary name; the last rename
    wins. For a symbolic link, all of this happens at the file it leads to (`write_target`).
    """
    path = write_target(path)
    remove_leftovers(path)
    temporary = temporary_sibling(path, _KIND)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_target(path: Path) -> Path:
    """The file that writing `path` replaces: `path`, or the end of the symbolic links it is (which may not exist yet;
    still a link for a loop of links)."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def remove_leftovers(path: Path) -> None:
    """Remove the temporary files of `path` that processes of this host, now gone, left (best effort)."""
    for entry in path.parent.glob(f".{glob.escape(path.name)}.cse-{_KIND}-*"):
        if abandoned(entry) != (path.name, _KIND) or entry.is_dir():
            continue
        try:
            entry.unlink()
        except OSError:
            continue
