from collections import Counter, deque

import numpy as np
import pytest
import torch
from datasets import Dataset
from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

from cse.data.no_duplicates_sampler import NoDuplicatesSampler, duplicate_free_batches
from cse.data.text_identity import text_id


def _ids(rows: list[tuple[str, ...]]) -> np.ndarray:
    """(N, k) text ids of rows of texts."""
    return np.array([[text_id(text) for text in row] for row in rows], dtype=np.int64)


def _nli_like_rows(count: int) -> list[tuple[str, ...]]:
    """Triplets whose premise repeats three times, as in SNLI/MNLI-derived NLI data."""
    return [(f"premise {index // 3}", f"hypothesis {index}", f"negative {index}") for index in range(count)]


@pytest.mark.parametrize("batch_size", [4, 16])
def test_no_batch_repeats_a_text_and_the_data_is_covered(batch_size):
    rows = _nli_like_rows(300)
    sampler = NoDuplicatesSampler(_ids(rows), batch_size, seed=3)
    indices = list(sampler)
    assert len(indices) == len(sampler) and len(indices) % batch_size == 0
    assert len(set(indices)) == len(indices), "a row was used twice in one epoch"
    assert len(indices) >= len(rows) - 2 * batch_size, "more rows were left out than the last incomplete batches"
    for start in range(0, len(indices), batch_size):
        texts = Counter(text for index in indices[start : start + batch_size] for text in rows[index])
        assert max(texts.values()) == 1, f"duplicate text in batch {start // batch_size}"


def test_reshuffles_per_epoch_and_is_reproducible():
    sampler = NoDuplicatesSampler(_ids(_nli_like_rows(60)), 6, seed=0)
    first = list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    assert first != second
    again = NoDuplicatesSampler(_ids(_nli_like_rows(60)), 6, seed=0)
    again.set_epoch(1)
    assert list(again) == second


def test_impossible_batches_end_the_epoch():
    rows = [("same premise", f"h{index}") for index in range(10)]  # every row shares its premise
    assert list(NoDuplicatesSampler(_ids(rows), 2)) == []


def test_processes_split_duplicate_free_global_batches():
    """Under DDP, step k's batches of all processes together are the k-th batch of one process with N·B rows."""
    rows, batch_size, processes = _nli_like_rows(300), 4, 3
    samplers = [NoDuplicatesSampler(_ids(rows), batch_size, processes, rank, seed=5) for rank in range(processes)]
    for sampler in samplers:
        sampler.set_epoch(2)
    per_rank = [sampler.batches() for sampler in samplers]
    assert len({len(sampler) for sampler in samplers}) == 1, "every process must take the same number of steps"
    single = NoDuplicatesSampler(_ids(rows), batch_size * processes, seed=5)
    single.set_epoch(2)
    assert len(single.batches()) == len(per_rank[0]) > 0
    for step, global_batch in enumerate(single.batches()):
        assert [index for batches in per_rank for index in batches[step]] == global_batch.tolist()
        texts = Counter(text for batches in per_rank for index in batches[step] for text in rows[index])
        assert max(texts.values()) == 1, f"a text repeats across the processes' batches of step {step}"
    assert list(samplers[1]) == [index for batch in per_rank[1] for index in batch]


def _one_by_one(text_ids: list[tuple[int, ...]], order: list[int], size: int) -> list[list[int]]:
    """The rule written out row by row: a row sharing a text with the batch waits, waiting rows open the next batch."""
    pending, batches = deque(order), []
    while len(pending) >= size:
        batch, seen, waiting = [], set(), []
        while pending and len(batch) < size:
            index = pending.popleft()
            if seen.isdisjoint(text_ids[index]):
                batch.append(index)
                seen.update(text_ids[index])
            else:
                waiting.append(index)
        pending.extendleft(reversed(waiting))
        if len(batch) < size:
            break
        batches.append(batch)
    return batches


@pytest.mark.parametrize(("rows", "texts", "distinct", "size"), [(500, 1, 120, 8), (800, 3, 900, 16), (400, 2, 60, 5)])
def test_batches_equal_the_row_by_row_rule(rows, texts, distinct, size):
    """Many collisions (few distinct texts), texts repeated within a row, every window size: the same batches."""
    generator = np.random.default_rng(rows)
    text_ids = generator.integers(0, distinct, size=(rows, texts))
    order = generator.permutation(rows)
    expected = _one_by_one([tuple(row) for row in text_ids.tolist()], order.tolist(), size)
    assert len(expected) > 2
    assert duplicate_free_batches(text_ids, order, size).tolist() == expected


def test_batches_equal_sentence_transformers_no_duplicates_batch_sampler():
    """Same seed and epoch, same shuffle: the full batches of its first pass over the data are ours."""
    rows = [(f"premise {index // 3}", f"hypothesis {index % 50}", f"negative {index}") for index in range(600)]
    dataset = Dataset.from_dict({name: [row[column] for row in rows] for column, name in enumerate("abc")})
    theirs = NoDuplicatesBatchSampler(dataset, 16, drop_last=True, generator=torch.Generator(), seed=7)
    theirs.set_epoch(2)
    ours = NoDuplicatesSampler(_ids(rows), 16, seed=7)
    ours.set_epoch(2)
    assert len(ours.batches()) > 20
    assert [batch for batch, _ in zip(theirs, ours.batches(), strict=False)] == ours.batches().tolist()


def test_texts_are_compared_normalized_and_a_row_may_repeat_its_own_text():
    rows = [("A man plays.", "x0"), ("a  MAN plays.", "x1"), ("same", "same"), ("b", "x3")]
    batches = NoDuplicatesSampler(_ids(rows), 2, seed=0).batches().tolist()
    assert all({0, 1} != set(batch) for batch in batches), "case and spaces make no new text"
    assert any(2 in batch for batch in batches), "anchor equal to its positive is one row, not a duplicate"
