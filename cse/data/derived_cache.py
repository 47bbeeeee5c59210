"""Where data computed from the training data (Arrow copies of text files, tokens, text ids) is cached."""

from pathlib import Path

import datasets


def derived_data_cache(cache_dir: str | None) -> Path:
    """`cache_dir/cse-tokenized`, or the same folder in `datasets`' cache (`HF_DATASETS_CACHE`)."""
    return Path(cache_dir or datasets.config.HF_DATASETS_CACHE) / "cse-tokenized"
