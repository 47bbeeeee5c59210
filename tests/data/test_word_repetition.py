"""ESimCSE's word repetition (`data.word_repetition_rate`): the reference's `dup_type bpe` draw (caskcsg/sentemb,
ESimCSE/train.py), checked against its formula, a naive insertion, and through the collator and the data module."""

import math
import random
from collections import Counter
from types import SimpleNamespace

import pytest
import torch
from sentences import tokenized_rows
from transformers import AutoTokenizer

from cse.data.collate import ExampleCollator
from cse.data.datamodule import SimCSEDataModule
from cse.data.word_repetition import (
    ROW_INDEX,
    IndexedRows,
    WordRepetition,
    max_added_tokens,
    repeat_tokens,
    repeated_positions,
)
from cse.errors import InputError

RATE = 0.32  # ESimCSE's BERT-base dup_rate (run.sh)


def _reference_choices(length: int, rate: float) -> int:
    """The reference's number of dup_len values: `random.randrange(min(10, int(dup_rate * input_len)))`, drawn only
    when `int(dup_rate * input_len) > 0`."""
    bound = int(rate * length)
    return min(10, bound) if bound > 0 else 0


def _naive_repeat(tokens: list[int], positions: list[int]) -> list[int]:
    """Insert a copy after each chosen token, from the last position back so earlier ones keep their index."""
    result = list(tokens)
    for position in sorted(positions, reverse=True):
        result.insert(position + 1, result[position])
    return result


def test_number_of_repeated_tokens_follows_the_reference_formula():
    generator = random.Random(0)
    lengths = [3 + index % 30 for index in range(6000)]  # 3 .. 32 tokens, [CLS] and [SEP] included
    counts = [len(repeated_positions(length, RATE, generator)) for length in lengths]
    # dup_len is uniform on {0, ..., c - 1}: mean (c - 1) / 2, variance (c² - 1) / 12.
    choices = [_reference_choices(length, RATE) for length in lengths]
    expected = sum((c - 1) / 2 for c in choices if c)
    std = math.sqrt(sum((c * c - 1) / 12 for c in choices if c))
    assert abs(sum(counts) - expected) < 4 * std
    for length in (3, 4, 31, 32):  # no repetition below int(rate · L) = 1; never more than c - 1 tokens
        drawn = {count for count, other in zip(counts, lengths, strict=True) if other == length}
        assert drawn == set(range(_reference_choices(length, RATE))) or drawn == {0}
    histogram = Counter(count for count, length in zip(counts, lengths, strict=True) if length == 32)
    assert sorted(histogram) == list(range(10))  # int(0.32 · 32) = 10 choices: 0 .. 9, each about 1/10
    assert all(abs(frequency / 200 - 0.1) < 0.07 for frequency in histogram.values())


def _reference_bpe(input_ids: list[int], dup_rate: float, rng: random.Random) -> list[int]:
    """The reference's `dup_type bpe` branch of `prepare_features` (caskcsg/sentemb, commit 5eeec55, ESimCSE/train.py)
    line for line, for one positive sentence, its global `random` replaced by `rng`."""
    input_len = len(input_ids)
    if int(dup_rate * input_len) > 0:
        add_len = rng.randrange(min(10, int(dup_rate * input_len)))
        dup = sorted(rng.sample(range(1, input_len - 1), add_len))  # not [CLS]
        new_input_ids = []
        for i, _id in enumerate(input_ids):
            if i in dup:
                new_input_ids.append(_id)
            new_input_ids.append(_id)
    else:
        new_input_ids = input_ids
    return new_input_ids


@pytest.mark.parametrize("rate", [RATE, 0.1, 0.6])
def test_repetition_is_the_reference_code_from_the_same_random_state(rate):
    for seed in range(100):
        for length in (2, 3, 4, 7, 16, 31, 32):
            tokens = list(range(100, 100 + length))  # distinct ids, so each copy is identifiable
            ours, theirs = random.Random(seed), random.Random(seed)
            assert repeat_tokens(tokens, repeated_positions(length, rate, ours)) == _reference_bpe(tokens, rate, theirs)
            assert ours.getstate() == theirs.getstate(), "the same draws, in the same order"


def test_only_chosen_tokens_are_doubled_in_order_and_never_the_special_ones():
    generator = random.Random(1)
    for length in range(2, 40):
        tokens = list(range(100, 100 + length))  # distinct ids, so each copy is identifiable
        positions = repeated_positions(length, 0.5, generator)
        assert positions == sorted(set(positions)) and all(1 <= p <= length - 2 for p in positions)
        repeated = repeat_tokens(tokens, positions)
        assert repeated == _naive_repeat(tokens, positions)
        assert len(repeated) - length == len(positions) and repeated[0] == tokens[0] and repeated[-1] == tokens[-1]


def test_max_added_tokens_bounds_every_draw():
    generator = random.Random(2)
    for length in range(3, 33):
        added = max(len(repeated_positions(length, RATE, generator)) for _ in range(200))
        assert added <= max_added_tokens(32, RATE) == 9


def _rows(model_dir, texts):
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = tokenized_rows(tokenizer, [[text] for text in texts])
    return tokenizer, [row | {ROW_INDEX: index} for index, row in enumerate(rows)]


TEXTS = ["a man is playing a guitar in the park", "the dog is in the park", "a girl", "boys are playing on the dog"]


def test_collator_pairs_each_sentence_with_its_repetition_reproducibly(tiny_model_dir):
    tokenizer, rows = _rows(tiny_model_dir, TEXTS)
    repetition = WordRepetition(0.6, SimpleNamespace(seed=7))
    batch = ExampleCollator(tokenizer, word_repetition=repetition)(rows)
    assert batch["input_ids"].shape[:2] == (4, 2)  # (B, 2, L): (anchor, repeated positive)
    for index, row in enumerate(rows):
        mask = batch["attention_mask"][index].bool()
        anchor, positive = (batch["input_ids"][index, view][mask[view]].tolist() for view in (0, 1))
        assert anchor == row["input_ids"][0]
        generator = random.Random(7 * 2**32 + index)  # the row's own seed: (seed, row index)
        expected = _naive_repeat(anchor, repeated_positions(len(anchor), 0.6, generator))
        assert positive == expected
        assert batch["token_type_ids"][index, 1][mask[1]].tolist() == [0] * len(expected)
    again = ExampleCollator(tokenizer, word_repetition=repetition)(list(reversed(rows)))  # another batch order
    assert torch.equal(again["input_ids"].flip(0), batch["input_ids"]), "a row's draw depends on its index only"
    other_seed = ExampleCollator(tokenizer, word_repetition=WordRepetition(0.6, SimpleNamespace(seed=8)))(rows)
    assert not torch.equal(other_seed["input_ids"], batch["input_ids"])


def test_data_module_pads_compiled_batches_to_the_longest_repetition(tiny_model_dir, tiny_data, tmp_path):
    data = SimCSEDataModule(
        str(tiny_data.train_file),
        tokenizer_name_or_path=str(tiny_model_dir),
        word_repetition_rate=RATE,
        batch_size=8,
        max_seq_length=32,
        pad_to_multiple_of=None,
        pad_to_max_length=True,
        cache_dir=str(tmp_path / "cache"),
        seed=3,
    )
    data.setup("fit")
    loader = data.train_dataloader()
    assert isinstance(loader.dataset, IndexedRows)
    batch = next(iter(loader))
    assert batch["input_ids"].shape == (8, 2, 32 + 9)  # max_seq_length + the most a 32-token sentence can gain
    lengths = batch["attention_mask"].sum(-1)  # (B, 2)
    assert (lengths[:, 1] >= lengths[:, 0]).all() and (lengths[:, 0] <= 32).all()


@pytest.mark.parametrize("rate", [0.0, 1.0, -0.1, math.nan])
def test_a_rate_outside_zero_one_is_one_line(tiny_model_dir, tiny_data, rate):
    with pytest.raises(InputError, match=r"^data.word_repetition_rate: must be in \(0, 1\)"):
        SimCSEDataModule(
            str(tiny_data.train_file), tokenizer_name_or_path=str(tiny_model_dir), word_repetition_rate=rate
        )


def test_word_repetition_of_pairs_is_refused(tiny_model_dir, tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("sent0\tsent1\n" + "a man\ta boy\n" * 4)
    data = SimCSEDataModule(
        str(pairs), tokenizer_name_or_path=str(tiny_model_dir), word_repetition_rate=RATE, batch_size=2
    )
    with pytest.raises(InputError, match=r"^data.word_repetition_rate: .* has pairs"):
        data.setup("fit")
