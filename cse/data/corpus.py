"""Read a `.txt` corpus, one sentence per line (SimCSE's wiki1m format), as a `Dataset` with column `text`."""

from pathlib import Path

from datasets import Dataset, load_dataset
from datasets.fingerprint import Hasher

from cse.data.text_file import check_text_file
from cse.errors import InputError


def load_sentences(path: str | Path, cache_dir: str | None = None) -> Dataset:
    """Sentences as a `Dataset` with one column `text`, blank lines dropped.

    Args:
        path: a local UTF-8 `.txt` file.
        cache_dir: where `datasets` keeps its Arrow copy; None for its default (`HF_DATASETS_CACHE`).
    """
    path = Path(path).expanduser()
    check_text_file(path, what="corpus")
    dataset = load_dataset("text", data_files=str(path.resolve()), split="train", cache_dir=cache_dir)
    dataset = dataset.filter(
        lambda batch: [bool(text and text.strip()) for text in batch["text"]],
        batched=True,
        new_fingerprint=Hasher.hash((dataset._fingerprint, "non-blank lines")),
        desc="Dropping blank lines",
    )
    if len(dataset) == 0:
        raise InputError(f"corpus {path}: no sentences (only blank lines)")
    return dataset
