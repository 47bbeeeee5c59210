"""When training texts are tokenized: all ahead of the first step (cached), or batch by batch in the loader's workers.

Tokenizing ahead costs start-up time linear in the corpus (about 13,000 sentences/s for MiniLM on one core) before
the first step, on every run without a cache. Tokenizing in the workers leaves the memory-mapped Arrow text table
as the dataset: start-up is then the text file's Arrow conversion (cached after the first run), and each batch is
tokenized by the `DataLoader` worker that collates it, in parallel with training. Either way a batch holds the same
token ids (the same texts, the same tokenizer call per text), so the sampler, DDP sharding and exact resume are
unchanged.
"""

from pathlib import Path
from typing import Literal

from transformers import PreTrainedTokenizerBase

from cse.data.collate import ExampleCollator
from cse.data.columns import TEXT_COLUMNS
from cse.errors import InputError
from cse.models.batch import TrainingBatch
from cse.models.word_deletion import NO_WORD

Tokenize = Literal["ahead", "in_workers", "auto"]
TOKENIZE_CHOICES = ("ahead", "in_workers", "auto")
# wiki1m (SimCSE's unsupervised corpus) is 120 MB: from this size on, "auto" streams tokenization into the workers.
AUTO_IN_WORKERS_BYTES = 64 * 2**20


def resolve_tokenize(tokenize: str, sources: list[str]) -> Literal["ahead", "in_workers"]:
    """`tokenize` as chosen, or for "auto": in the workers when the local sources hold `AUTO_IN_WORKERS_BYTES` or
    more, else ahead.

    Raises:
        InputError: an unknown value.
    """
    if tokenize not in TOKENIZE_CHOICES:
        raise InputError(f"data.tokenize: {tokenize!r} is not one of {', '.join(TOKENIZE_CHOICES)}")
    if tokenize != "auto":
        return tokenize
    return "in_workers" if sum(_local_bytes(source) for source in sources) >= AUTO_IN_WORKERS_BYTES else "ahead"


class TokenizingCollator:
    """Rows of texts (`sent0`, maybe `sent1`, `hard_neg`, `score`, other keys passed on) -> the `TrainingBatch` of
    `collate`.

    Each text column is tokenized as `cse.data.training_data.tokenize_examples` tokenizes it (truncated to
    `max_seq_length`, unpadded), so the batch equals the one made from rows tokenized ahead.

    Args:
        tokenizer: the model's tokenizer.
        max_seq_length: truncation in tokens (special tokens included).
        collate: pads the tokenized rows into a batch (k texts per row -> (B, k, L) tensors).
        word_ids: also each token's word index (TSDAE's word deletion).
    """

    def __init__(
        self, tokenizer: PreTrainedTokenizerBase, max_seq_length: int, collate: ExampleCollator, word_ids: bool = False
    ) -> None:
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.collate = collate
        self.word_ids = word_ids

    def __call__(self, rows: list[dict]) -> TrainingBatch:
        columns = [name for name in TEXT_COLUMNS if name in rows[0]]
        encoded = [
            self.tokenizer([row[name] for row in rows], truncation=True, max_length=self.max_seq_length)
            for name in columns
        ]
        tokenized = []
        for index, row in enumerate(rows):
            example = {key: [enc[key][index] for enc in encoded] for key in encoded[0]}  # k views per key
            example |= {key: value for key, value in row.items() if key not in columns}  # score, a row's index
            if self.word_ids:  # TSDAE's words, as `tokenize_examples` gives them
                example["word_ids"] = [
                    [NO_WORD if word is None else word for word in enc.word_ids(index)] for enc in encoded
                ]
            tokenized.append(example)
        return self.collate(tokenized)


def _local_bytes(source: str) -> int:
    """Bytes of a local file or directory; 0 for a hub dataset name."""
    path = Path(source).expanduser()
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())
    return 0
