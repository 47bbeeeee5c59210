"""Several datasets in one run: each step's batches from one dataset, schedules as sentence-transformers' samplers
(`sentence_transformers/base/sampler.py`: `RoundRobinBatchSampler`, `ProportionalBatchSampler`), exact resume."""

import hashlib
from types import SimpleNamespace

import pytest
import torch

from cse.data.datamodule import SimCSEDataModule
from cse.data.mixture import MixtureSampler
from cse.data.resumable import ResumableDataLoader
from cse.data.training_sources import training_sources
from cse.errors import InputError

LENGTHS, BATCH, REPLICAS = [10, 7, 13], 2, 2


def _global_batches(mixture: str, epoch: int = 0, seed: int = 0) -> list[list[int]]:
    """Each step's rows of all processes together (rank 0's batch, then rank 1's)."""
    ranks = []
    for rank in range(REPLICAS):
        sampler = MixtureSampler(LENGTHS, BATCH, mixture, REPLICAS, rank, seed)
        sampler.set_epoch(epoch)
        indices = list(sampler)
        assert len(indices) == len(sampler)
        ranks.append([indices[start : start + BATCH] for start in range(0, len(indices), BATCH)])
    return [sum(batches, []) for batches in zip(*ranks, strict=True)]


def _dataset_of(index: int) -> int:
    """The dataset of a concatenated index, from the cumulative lengths (0-9, 10-16, 17-29)."""
    return 0 if index < 10 else 1 if index < 17 else 2


@pytest.mark.parametrize("mixture", ["round_robin", "proportional"])
def test_each_step_draws_from_one_dataset_and_no_row_twice(mixture):
    for epoch in range(3):
        batches = _global_batches(mixture, epoch)
        indices = [index for batch in batches for index in batch]
        assert len(indices) == len(set(indices)), "a row twice in one epoch"
        assert all(len({_dataset_of(index) for index in batch}) == 1 for batch in batches)
        datasets = [_dataset_of(batch[0]) for batch in batches]
        full = [length // (BATCH * REPLICAS) for length in LENGTHS]  # full global batches per dataset: 2, 1, 3
        if mixture == "round_robin":  # whole rounds while every dataset has a full batch: 1 round of 3
            assert datasets == [0, 1, 2] * min(full)
        else:  # every full batch of every dataset once
            assert sorted(datasets) == [dataset for dataset, count in enumerate(full) for _ in range(count)]
    assert _global_batches(mixture, 0) != _global_batches(mixture, 1), "reshuffled each epoch"
    assert _global_batches(mixture, 0, seed=3) == _global_batches(mixture, 0, seed=3)


@pytest.mark.parametrize("lengths", [[10, 7, 13], [9, 9, 4], [4, 12, 8], [8, 8]])
@pytest.mark.parametrize("replicas", [1, 2])
def test_round_robin_takes_whole_rounds_as_sentence_transformers(lengths, replicas):
    """Whole rounds while every dataset still has a full global batch, as sentence-transformers'
    `RoundRobinBatchSampler` (zip of the datasets' batch samplers): no partial last round."""
    from sentence_transformers.base.sampler import RoundRobinBatchSampler
    from torch.utils.data import BatchSampler, ConcatDataset, SequentialSampler

    size = BATCH * replicas
    expected, left = [], [length // size for length in lengths]
    while all(left):  # naive loop: a round starts only when every dataset has a full batch left
        for dataset in range(len(lengths)):
            expected.append(dataset)
            left[dataset] -= 1
    datasets = [list(range(length)) for length in lengths]
    reference = RoundRobinBatchSampler(
        ConcatDataset(datasets), [BatchSampler(SequentialSampler(d), size, drop_last=True) for d in datasets]
    )
    offsets = [sum(lengths[:dataset]) for dataset in range(len(lengths))]
    assert [max(d for d, offset in enumerate(offsets) if batch[0] >= offset) for batch in reference] == expected
    for rank in range(replicas):
        sampler = MixtureSampler(lengths, BATCH, "round_robin", replicas, rank)
        assert [dataset for dataset, _ in sampler.dataset_batches()] == expected
        assert len(sampler) == len(expected) * BATCH


def test_proportional_order_of_datasets_is_shuffled():
    orders = {tuple(_dataset_of(batch[0]) for batch in _global_batches("proportional", epoch)) for epoch in range(8)}
    assert len(orders) > 1


@pytest.mark.parametrize("mixture", ["round_robin", "proportional"])
@pytest.mark.parametrize("taken", [1, 4])
def test_resumed_mixture_loader_continues_exactly(mixture, taken):
    def loader(seed: int) -> ResumableDataLoader:
        sampler = MixtureSampler([20, 14, 26], 2, mixture, seed=seed)
        return ResumableDataLoader(list(range(60)), 2, sampler=sampler, drop_last=True)

    reference = loader(5)
    reference.sampler.set_epoch(2)
    expected = [batch.tolist() for batch in reference]
    interrupted = loader(5)
    interrupted.sampler.set_epoch(2)
    iterator = iter(interrupted)
    seen = [next(iterator).tolist() for _ in range(taken)]
    resumed = loader(99)  # a resumed run whose seed_everything was drawn anew
    resumed.load_state_dict(interrupted.state_dict())
    resumed.sampler.set_epoch(2)
    assert seen + [batch.tolist() for batch in resumed] == expected


@pytest.fixture
def task_files(tmp_path):
    """Pairs of two tasks under different column names, each text saying its task, and its row by a letter (the
    tiny tokenizer knows single letters and digits, not numbers)."""
    nli, qa, letters = tmp_path / "nli.csv", tmp_path / "qa.jsonl", "abcdefghijkl"
    nli.write_text("premise,hypothesis\n" + "".join(f"nli premise {c},nli hypothesis {c}\n" for c in letters))
    qa.write_text("".join(f'{{"question": "qa question {c}", "answer": "qa answer {c}"}}\n' for c in letters[:9]))
    return [
        {"file": str(nli), "columns": {"sent0": "premise", "sent1": "hypothesis"}},
        {"file": str(qa), "columns": {"sent0": "question", "sent1": "answer"}},
    ]


def _datamodule(model_dir, tmp_path, train_files, **options) -> SimCSEDataModule:
    options = {"batch_size": 2, "max_seq_length": 16, "cache_dir": str(tmp_path / "cache"), **options}
    return SimCSEDataModule(train_files=train_files, tokenizer_name_or_path=str(model_dir), **options)


def _batches(datamodule: SimCSEDataModule, rank: int = 0, epoch: int = 0) -> list[dict]:
    datamodule.trainer = SimpleNamespace(world_size=2, global_rank=rank, check_val_every_n_epoch=None)
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    loader.sampler.set_epoch(epoch)
    return list(loader)


@pytest.mark.parametrize("tokenize", ["ahead", "in_workers"])
def test_a_mixture_of_two_tasks_keeps_each_step_within_one_task(tiny_model_dir, tmp_path, task_files, tokenize):
    steps = []
    for rank in range(2):
        datamodule = _datamodule(tiny_model_dir, tmp_path, task_files, tokenize=tokenize, mixture="proportional")
        batches = _batches(datamodule, rank)
        texts = [
            datamodule.tokenizer.batch_decode(b["input_ids"].flatten(0, 1), skip_special_tokens=True) for b in batches
        ]
        steps.append(texts)
    assert datamodule.mode == "pairs"
    assert len(steps[0]) == 12 // 4 + 9 // 4  # full global batches (2 processes x 2 rows) of each task: 3 + 2
    for rank0, rank1 in zip(*steps, strict=True):
        assert len({text.split()[0] for text in rank0 + rank1}) == 1, "a step mixes tasks"
        for texts in (rank0, rank1):  # (B, 2) rows flattened: anchor, positive of the same row
            assert all(a.split()[-1] == p.split()[-1] for a, p in zip(texts[::2], texts[1::2], strict=True))


def test_a_mixture_gives_the_same_batches_tokenized_ahead_or_in_workers(tiny_model_dir, tmp_path, task_files):
    digests = {}
    for tokenize in ("ahead", "in_workers"):
        datamodule = _datamodule(tiny_model_dir, tmp_path, task_files, tokenize=tokenize, mixture="round_robin")
        batches = _batches(datamodule, epoch=1)
        digests[tokenize] = [hashlib.sha1(b["input_ids"].numpy().tobytes()).hexdigest() for b in batches]
    assert len(digests["ahead"]) == 4 and digests["ahead"] == digests["in_workers"]


def test_mixture_errors_are_one_line(tiny_model_dir, tmp_path, task_files):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"sentence {i}\n" for i in range(8)))
    cases = [
        ({"train_files": [*task_files, str(corpus)]}, r"every dataset of a mixture must have the same mode, got .*"),
        ({"train_files": task_files, "mixture": "random"}, r"data.mixture: 'random' is not one of round_robin"),
        ({"train_files": task_files, "no_duplicates": True}, r"data.no_duplicates: not available with data.train_"),
        ({"train_files": [], "train_file": str(corpus)}, r"data.train_files: given together with data.train_file"),
        ({"train_files": []}, r"data.train_files: expected a non-empty list"),
        ({"train_files": [{"file": str(corpus), "weight": 2}]}, r"data.train_files\[0\]: unknown key 'weight'"),
        ({"train_files": [{"columns": {}}]}, r"data.train_files\[0\]: expected a file or"),
        (
            {"train_files": [*task_files, str(corpus), f"{tmp_path}/./corpus.txt"]},
            rf"data.train_files\[3\]: {tmp_path}/./corpus.txt is data.train_files\[2\] again, with the same columns",
        ),
        (
            {"train_files": [task_files[0], task_files[1], dict(task_files[0])]},
            r"data.train_files\[2\]: .* is data.train_files\[0\] again, with the same columns",
        ),
        ({"train_files": task_files, "columns": {"sent0": "a"}}, r"data.columns: applies to data.train_file;"),
        ({}, r"data.train_file: not set"),
        ({"train_file": str(corpus), "mixture": "round_robin"}, r"data.mixture: round_robin is how data.train_files"),
        ({"train_files": [str(corpus)], "batch_size": 5}, r"data.batch_size: 5 on each of 2 processes is larger"),
        (
            {"train_files": task_files, "word_repetition_rate": 0.3},
            rf"but data.train_files \({task_files[0]['file']}, {task_files[1]['file']}\) has pairs \(use it",
        ),
        ({"train_files": task_files, "word_ids": True}, r"but data.train_files \(.*\) holds pairs examples;"),
    ]
    for options, message in cases:
        options = {"batch_size": 2, "max_seq_length": 16, "cache_dir": str(tmp_path / "cache"), **options}
        with pytest.raises(InputError, match=message) as error:
            datamodule = SimCSEDataModule(tokenizer_name_or_path=str(tiny_model_dir), **options)
            _batches(datamodule)
        assert "\n" not in str(error.value)


def test_every_file_of_the_mixture_is_read(tiny_model_dir, tmp_path, task_files):
    datamodule = _datamodule(tiny_model_dir, tmp_path, task_files)
    datamodule.setup("fit")
    assert [len(dataset) for dataset in datamodule.train_datasets] == [12, 9]
    assert len(datamodule.train_dataset) == 21 and torch.utils.data.ConcatDataset is type(datamodule.train_dataset)


def test_one_file_under_two_column_mappings_is_two_datasets(tmp_path):
    """A table read as (q, a) pairs and as (q, b) pairs: two datasets of one mixture, not a repeat."""
    table = tmp_path / "qa.csv"
    table.write_text("q,a,b\nwho,me,you\n")
    entries = [{"file": str(table), "columns": {"sent0": "q", "sent1": column}} for column in ("a", "b")]
    assert [source.columns for source in training_sources(None, None, entries)] == [
        {"sent0": "q", "sent1": "a"},
        {"sent0": "q", "sent1": "b"},
    ]
