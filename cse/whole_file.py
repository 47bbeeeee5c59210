"""Files written whole or not at all: under a temporary name beside the target, renamed onto it once complete."""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def written_whole(path: Path) -> Iterator[Path]:
    """A fresh temporary path beside `path` to write; renamed onto `path` when the block ends without an exception.

    Beside it, in the same folder, so that the rename is atomic: a reader sees the old file or the complete new one,
    never a part. Whatever is left under the temporary name is removed, so a failure (an exception, a full disk)
    leaves `path` as it was. Processes writing the same `path` each get their own temporary name; the last rename
    wins.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
