"""Write a directory all at once: staged beside its destination under a hidden name, then renamed into place.

A crash or a full disk leaves the previous directory or the new one, never a mix. What a killed process (SIGKILL,
a power cut) leaves behind, its staging folder or a previous directory it had just moved aside, is named after the
host and process that wrote it: the next write into the same folder removes the staging folders of processes that
are gone, and puts a previous directory back where it was if nothing replaced it.
"""

import os
import shutil
from pathlib import Path

from cse.writer_identity import abandoned, temporary_sibling

STAGING, ASIDE = "staging", "previous"


def staging_directory(out_dir: Path) -> Path:
    """A new, empty folder beside `out_dir` to write its next content into; the leftovers of killed writes go first.

    It gets the permissions of any folder the user creates (0o777 less the umask), not `tempfile.mkdtemp`'s 0o700.
    """
    remove_leftovers(out_dir.parent)
    staging = temporary_sibling(out_dir, STAGING)
    staging.mkdir()
    return staging


def replace_directory(staging: Path, out_dir: Path) -> None:
    """Rename `staging` to `out_dir`; an existing `out_dir` is moved aside first and removed only afterwards."""
    if not os.path.lexists(out_dir):
        os.replace(staging, out_dir)
        return
    aside = temporary_sibling(out_dir, ASIDE)
    os.replace(out_dir, aside)
    try:
        os.replace(staging, out_dir)
    except OSError:
        os.replace(aside, out_dir)  # put the previous directory back
        raise
    shutil.rmtree(aside, ignore_errors=True)  # what a failure leaves, the next write removes


def ordinary_permissions(directory: Path) -> None:
    """Give every file and folder under `directory` the permissions the umask gives a new one.

    Libraries that write through temporary files (transformers' safetensors shards) leave them 0o600: an export
    shared on a cluster would be unreadable to the rest of the group.
    """
    umask = _umask()
    for root, folders, files in os.walk(directory):
        for name in folders:
            os.chmod(os.path.join(root, name), 0o777 & ~umask, follow_symlinks=False)
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, 0o666 & ~umask)
    os.chmod(directory, 0o777 & ~umask)


def remove_leftovers(parent: Path) -> None:
    """Remove what killed writes on this host left in `parent` (best effort: a folder that resists stays)."""
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    for entry in entries:
        left = abandoned(entry)
        if left is None or left[1] not in (STAGING, ASIDE) or entry.is_symlink():
            continue
        name, kind = left
        original = parent / name
        try:
            if kind == ASIDE and not os.path.lexists(original):
                os.replace(entry, original)  # killed between the two renames: the previous directory is the only one
            else:
                shutil.rmtree(entry)
        except OSError:
            continue


def _umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask
