"""Read a `.txt` corpus, one sentence per line (SimCSE's wiki1m format), as a `Dataset` with column `text`."""

from collections.abc import Iterator
from pathlib import Path

from datasets import Dataset, Features, Value
from datasets.fingerprint import Hasher

from cse.data.text_file import check_text_file, iter_lines
from cse.errors import InputError


def load_sentences(path: str | Path, cache_dir: str | None = None) -> Dataset:
    """Sentences as a `Dataset` with one column `text`, blank lines dropped.

    Lines are split as `cse.data.text_file` says (at `\\n` only, so a sentence holding a form feed or U+2028 stays
    one sentence; a byte-order mark is dropped), not by `datasets`' text loader, which also splits at a lone `\\r`.

    Args:
        path: a local UTF-8 `.txt` file.
        cache_dir: where `datasets` keeps its Arrow copy; None for its default (`HF_DATASETS_CACHE`).
    """
    path = Path(path).expanduser()
    check_text_file(path, what="corpus")
    if not any(line.strip() for line in iter_lines(path)):  # stops at the first sentence
        raise InputError(f"corpus {path}: no sentences (only blank lines)")
    stat = path.stat()
    identity = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)  # a changed file is read again, not from cache
    return Dataset.from_generator(
        _non_blank_lines,
        features=Features({"text": Value("string")}),
        cache_dir=cache_dir,
        gen_kwargs={"path": str(path.resolve()), "identity": identity},
        fingerprint=Hasher.hash((identity, "non-blank lines split at \\n")),
    )


def _non_blank_lines(path: str, identity: tuple) -> Iterator[dict[str, str]]:
    """The rows of `load_sentences`; `identity` is unused here but part of the cache key `datasets` makes."""
    for line in iter_lines(Path(path)):
        if line.strip():
            yield {"text": line}
