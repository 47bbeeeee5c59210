"""When two texts count as the same one: the same normalized text, identified by a 64-bit hash.

The duplicate-free sampler (`cse.data.no_duplicates_sampler`) and hard-negative mining (`cse.inference.hard_negatives`)
compare texts this way, so "A  man" and "a man" are one text whatever the tokenizer does with case and spaces.
"""

import hashlib
import unicodedata
from pathlib import Path

import numpy as np
from datasets import Dataset
from datasets.fingerprint import Hasher

HASH_BYTES = 8  # 64 bits: about one collision in 10^19 pairs of different texts


def normalize_text(text: str) -> str:
    """The form in which two texts count as one: NFKC, case-folded, runs of whitespace as one space, stripped."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def text_id(text: str) -> int:
    """A signed 64-bit id of the normalized text, the same in every process and run (unlike Python's `hash`)."""
    digest = hashlib.blake2b(normalize_text(text).encode("utf-8"), digest_size=HASH_BYTES).digest()
    return int.from_bytes(digest, "little", signed=True)


def row_text_ids(dataset: Dataset, columns: list[str], cache_dir: Path, fingerprint: str) -> np.ndarray:
    """The `text_id` of each of `columns` in every row: (N, k) int64, k = len(columns).

    Computed with `datasets.map` into an Arrow file under `cache_dir` named by the data's `fingerprint`, so a
    second run (or the other DDP processes) reads it memory-mapped instead of hashing again.
    """
    key = Hasher.hash((fingerprint, columns, "text ids", HASH_BYTES))
    cache_dir.mkdir(parents=True, exist_ok=True)

    def identify(batch: dict[str, list]) -> dict[str, list[int]]:
        return {f"id_{name}": [text_id(text) for text in batch[name]] for name in columns}

    ids = dataset.map(
        identify,
        batched=True,
        batch_size=10_000,
        remove_columns=dataset.column_names,
        cache_file_name=str(cache_dir / f"{key}.arrow"),
        new_fingerprint=key,
        desc="Identifying texts",
    )
    table = ids.with_format("numpy")
    return np.stack([table[f"id_{name}"] for name in columns], axis=1).astype(np.int64, copy=False)
