"""Where data computed from the training data (Arrow copies of text files, tokens, text ids) is cached, and what
names a source's content in the cache keys."""

from collections.abc import Iterable
from pathlib import Path

import datasets


def derived_data_cache(cache_dir: str | None) -> Path:
    """`cache_dir/cse-tokenized`, or the same folder in `datasets`' cache (`HF_DATASETS_CACHE`)."""
    return Path(cache_dir or datasets.config.HF_DATASETS_CACHE) / "cse-tokenized"


def source_identity(source: str, hub_files: Iterable[str] = ()) -> tuple:
    """What makes a source's content: path, size and modification time of a file or directory, else the hub name
    and the same of the `hub_files` that hold the version `datasets` loaded."""
    path = Path(source).expanduser()
    if not path.exists():
        return (source, *_file_identities(Path(file) for file in hub_files))
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    return (str(path.resolve()), *_file_identities(files))


def _file_identities(files: Iterable[Path]) -> tuple:
    return tuple((str(file), file.stat().st_size, file.stat().st_mtime_ns) for file in files if file.is_file())
