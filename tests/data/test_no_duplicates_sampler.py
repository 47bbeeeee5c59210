from collections import Counter

import pytest

from cse.data.no_duplicates_sampler import NoDuplicatesSampler


def _nli_like_rows(count: int) -> list[tuple[str, ...]]:
    """Triplets whose premise repeats three times, as in SNLI/MNLI-derived NLI data."""
    return [(f"premise {index // 3}", f"hypothesis {index}", f"negative {index}") for index in range(count)]


@pytest.mark.parametrize("batch_size", [4, 16])
def test_no_batch_repeats_a_text_and_the_data_is_covered(batch_size):
    rows = _nli_like_rows(300)
    sampler = NoDuplicatesSampler(rows, batch_size, seed=3)
    indices = list(sampler)
    assert len(indices) == len(sampler) and len(indices) % batch_size == 0
    assert len(set(indices)) == len(indices), "a row was used twice in one epoch"
    assert len(indices) >= len(rows) - 2 * batch_size, "more rows were left out than the last incomplete batches"
    for start in range(0, len(indices), batch_size):
        texts = Counter(text for index in indices[start : start + batch_size] for text in rows[index])
        assert max(texts.values()) == 1, f"duplicate text in batch {start // batch_size}"


def test_reshuffles_per_epoch_and_is_reproducible():
    sampler = NoDuplicatesSampler(_nli_like_rows(60), 6, seed=0)
    first = list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    assert first != second
    again = NoDuplicatesSampler(_nli_like_rows(60), 6, seed=0)
    again.set_epoch(1)
    assert list(again) == second


def test_impossible_batches_end_the_epoch():
    rows = [("same premise", f"h{index}") for index in range(10)]  # every row shares its premise
    assert list(NoDuplicatesSampler(rows, 2)) == []


def test_processes_split_duplicate_free_global_batches():
    """Under DDP, step k's batches of all processes together are the k-th batch of one process with N·B rows."""
    rows, batch_size, processes = _nli_like_rows(300), 4, 3
    samplers = [NoDuplicatesSampler(rows, batch_size, processes, rank, seed=5) for rank in range(processes)]
    for sampler in samplers:
        sampler.set_epoch(2)
    per_rank = [sampler.batches() for sampler in samplers]
    assert len({len(sampler) for sampler in samplers}) == 1, "every process must take the same number of steps"
    single = NoDuplicatesSampler(rows, batch_size * processes, seed=5)
    single.set_epoch(2)
    assert len(single.batches()) == len(per_rank[0]) > 0
    for step, global_batch in enumerate(single.batches()):
        assert [index for batches in per_rank for index in batches[step]] == global_batch
        texts = Counter(text for batches in per_rank for index in batches[step] for text in rows[index])
        assert max(texts.values()) == 1, f"a text repeats across the processes' batches of step {step}"
    assert list(samplers[1]) == [index for batch in per_rank[1] for index in batch]
