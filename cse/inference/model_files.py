"""A model's files by name: in its local directory, or for a hub id through the Hugging Face cache.

`SentenceTransformer(hub_id)` reads its modules' files from the hub as it reads them from a directory: cse reads the
same ones the same way, with transformers' `cached_file` (downloaded into the cache when online; offline,
`HF_HUB_OFFLINE=1`, the cached copies).
"""

from pathlib import Path

from transformers.utils.hub import cached_file


class ModelFiles:
    """The files of `model`, a local directory or a hub id, by their path relative to the model's root."""

    def __init__(self, model: str) -> None:
        self.model = model
        directory = Path(model).expanduser()
        self.directory = directory if directory.is_dir() else None

    def path(self, name: str) -> Path | None:
        """The local path of the file `name` (`1_Pooling/config.json`); None where the model has no such file, or
        where the hub cannot say (offline and not cached, an unknown id: loading the model reports that)."""
        if self.directory is not None:
            path = self.directory / name
            return path if path.is_file() else None
        try:
            found = cached_file(
                self.model,
                name,
                _raise_exceptions_for_missing_entries=False,
                _raise_exceptions_for_connection_errors=False,
                _raise_exceptions_for_gated_repo=False,
            )
        except OSError:  # an unknown or private repository
            return None
        return Path(found) if found is not None else None
