"""ESimCSE's word repetition (Wu et al., COLING 2022, §3.1): the positive is its sentence with some subwords doubled.

Unsupervised SimCSE's two views of a sentence have the same length, so a model can learn that sentences of equal
length are alike; ESimCSE's positive repeats a few tokens so that the two views differ in length. Each sentence's
repetition is drawn as the reference code's `dup_type bpe` (caskcsg/sentemb, ESimCSE/train.py, `prepare_features`),
on the token ids after truncation to max_seq_length, [CLS]/<s> included:

    L = len(input_ids); if int(dup_rate · L) > 0:
        dup_len ~ uniform{0, ..., min(10, int(dup_rate · L)) - 1}      # random.randrange(min(10, int(rate · L)))
        positions: dup_len of 1 .. L - 2 without replacement           # never the first or last (special) token
        each chosen token is followed by a copy of itself

The reference draws this once per sentence with Python's `random`, when the data is tokenized; here each sentence's
draw makes the same two calls on a `random.Random` seeded by (the run's order seed, the row's index), so it is the same
in every epoch, on every process and in a resumed run, whatever the worker processes, and draws nothing from the
global random state.
"""

import random
from collections.abc import Sequence
from typing import Protocol

from torch.utils.data import Dataset

from cse.models.batch import TOKEN_KEYS

MAX_REPEATED = 10  # the reference's cap: min(10, int(dup_rate · L)) choices of dup_len
ROW_INDEX = "row_index"  # the key `IndexedRows` adds to each row


class _Seeded(Protocol):
    seed: int


def repetition_choices(length: int, rate: float) -> int:
    """How many values dup_len takes for a sentence of `length` tokens: min(10, int(rate · length)); 0: none."""
    return min(MAX_REPEATED, int(rate * length))


def max_added_tokens(max_length: int, rate: float) -> int:
    """The most tokens repetition adds to a sentence of at most `max_length` tokens."""
    return max(repetition_choices(max_length, rate) - 1, 0)


def repeated_positions(length: int, rate: float, rng: random.Random) -> list[int]:
    """The sorted positions in 1 .. length - 2 whose token is doubled, drawn as the reference's `dup_type bpe`."""
    choices = repetition_choices(length, rate)
    if choices == 0:
        return []
    count = rng.randrange(choices)  # uniform on {0, ..., choices - 1}
    return sorted(rng.sample(range(1, length - 1), count))


def repeat_tokens(tokens: Sequence[int], positions: Sequence[int]) -> list[int]:
    """`tokens` with the token at each of `positions` followed by a copy of itself."""
    doubled = set(positions)
    return [token for index, token in enumerate(tokens) for _ in range(2 if index in doubled else 1)]


class IndexedRows(Dataset):
    """A dataset's rows with their index under `ROW_INDEX`, which seeds each row's repetition."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        return {**self.dataset[index], ROW_INDEX: index}


class WordRepetition:
    """Rows of one sentence -> rows of (sentence, sentence with repeated tokens), ESimCSE's (anchor, positive).

    Args:
        rate: dup_rate in (0, 1); 0.32 for BERT-base in ESimCSE (run.sh).
        seed_source: holds the run's order `seed` (the training sampler, whose seed a resumed run restores).
    """

    def __init__(self, rate: float, seed_source: _Seeded) -> None:
        self.rate = rate
        self.seed_source = seed_source

    def __call__(self, rows: list[dict]) -> list[dict]:
        """Each row's `TOKEN_KEYS` lists [view] -> [view, repeated view], the same positions doubled in every key."""
        paired = []
        for row in rows:
            rng = random.Random(self._row_seed(row[ROW_INDEX]))
            positions = repeated_positions(len(row["input_ids"][0]), self.rate, rng)
            views = {key: [row[key][0], repeat_tokens(row[key][0], positions)] for key in TOKEN_KEYS if key in row}
            paired.append(views)
        return paired

    def _row_seed(self, index: int) -> int:
        return self.seed_source.seed * 2**32 + index  # distinct for every (seed, row); Random uses every bit
