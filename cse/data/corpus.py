"""Load a training corpus of sentences and tokenize it once, with the result cached on disk by `datasets`."""

from pathlib import Path

from datasets import Dataset, load_dataset
from datasets.fingerprint import Hasher
from transformers import PreTrainedTokenizerBase

from cse.data.text_file import check_text_file
from cse.errors import InputError

TEXT_SUFFIXES = (".txt",)


def load_sentences(source: str, cache_dir: str | None = None) -> Dataset:
    """Sentences as a `Dataset` with one column `text`, blank lines dropped.

    Args:
        source: a local `.txt` file (one sentence per line, as SimCSE's wiki1m) or a hub dataset name.
        cache_dir: where `datasets` keeps its Arrow copies; None for its default (`HF_DATASETS_CACHE`).
    """
    path = Path(source).expanduser()
    if path.exists() or path.suffix:
        check_text_file(path, what="corpus")
        if path.suffix not in TEXT_SUFFIXES:
            raise InputError(f"corpus {path}: unsupported format '{path.suffix}'; expected one of {TEXT_SUFFIXES}")
        dataset = load_dataset("text", data_files=str(path.resolve()), split="train", cache_dir=cache_dir)
    else:
        dataset = _load_hub_dataset(source, cache_dir)
    dataset = dataset.filter(
        lambda batch: [bool(text and text.strip()) for text in batch["text"]],
        batched=True,
        new_fingerprint=Hasher.hash((dataset._fingerprint, "non-blank lines")),
        desc="Dropping blank lines",
    )
    if len(dataset) == 0:
        raise InputError(f"corpus {source}: no sentences (only blank lines)")
    return dataset


def tokenize_sentences(dataset: Dataset, tokenizer: PreTrainedTokenizerBase, max_seq_length: int) -> Dataset:
    """Token ids per sentence, truncated to `max_seq_length`, unpadded (batches are padded dynamically).

    The fingerprint names the input data, the tokenizer's vocabulary and the length, so a second run with the
    same inputs loads the cached Arrow file instead of tokenizing again.
    """
    fingerprint = Hasher.hash(
        (dataset._fingerprint, type(tokenizer).__name__, tokenizer.get_vocab(), max_seq_length, "tokenize")
    )
    return dataset.map(
        lambda batch: tokenizer(batch["text"], truncation=True, max_length=max_seq_length),
        batched=True,
        remove_columns=dataset.column_names,
        new_fingerprint=fingerprint,
        desc="Tokenizing",
    )


def _load_hub_dataset(name: str, cache_dir: str | None) -> Dataset:
    """A hub dataset's train split, its `text` column (or its only string column) renamed to `text`."""
    try:
        dataset = load_dataset(name, split="train", cache_dir=cache_dir)
    except Exception as error:  # datasets raises many types (ConnectionError, DatasetNotFoundError, ValueError, ...)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"corpus '{name}': not a local file, and loading it from the hub failed: {reason}") from error
    text_columns = [name for name, feature in dataset.features.items() if getattr(feature, "dtype", None) == "string"]
    if "text" in dataset.column_names:
        column = "text"
    elif len(text_columns) == 1:
        column = text_columns[0]
    else:
        raise InputError(
            f"corpus '{name}': expected a 'text' column or exactly one string column, found {text_columns}"
        )
    return (
        dataset.select_columns([column]).rename_column(column, "text")
        if column != "text"
        else dataset.select_columns(["text"])
    )
