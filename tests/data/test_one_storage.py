"""A worker's batch in one storage per dtype (`cse.data.one_storage`): the same values, and one storage for the
training process to take over per dtype instead of one per tensor."""

import functools
from collections import Counter

import pytest
import torch
from torch.multiprocessing import reductions

from cse.data.datamodule import SimCSEDataModule
from cse.data.one_storage import in_one_storage_per_dtype

SENTENCES = [f"sentence {index} about {'a big ' * (index % 5)}dog number {index * 7}" for index in range(40)]


def test_tensors_become_views_of_one_buffer_per_dtype():
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 100, (4, 2, 8), generator=generator)
    batch = {
        "input_ids": ids,
        "attention_mask": torch.randint(0, 2, (8, 4), generator=generator).T,  # not contiguous
        "mlm_labels": torch.randint(-100, 100, (4, 3, 8), generator=generator),
        "score": torch.rand(4, generator=generator),
        "note": "kept",
    }
    packed = in_one_storage_per_dtype(batch)
    assert list(packed) == list(batch) and packed["note"] == "kept"
    for key in ("input_ids", "attention_mask", "mlm_labels", "score"):
        assert packed[key].dtype == batch[key].dtype and packed[key].shape == batch[key].shape
        assert torch.equal(packed[key], batch[key]) and packed[key].is_contiguous()
    storages = {key: packed[key].untyped_storage() for key in ("input_ids", "attention_mask", "mlm_labels", "score")}
    assert len({storages[key].data_ptr() for key in ("input_ids", "attention_mask", "mlm_labels")}) == 1
    assert storages["input_ids"].nbytes() == 8 * (4 * 2 * 8 + 4 * 8 + 4 * 3 * 8)  # nothing else in it
    assert storages["score"].data_ptr() != storages["input_ids"].data_ptr() and storages["score"].nbytes() == 4 * 4
    ids.zero_()
    assert packed["input_ids"].any()  # a copy, not the collated tensor


@pytest.fixture
def rebuilt(monkeypatch) -> Counter:
    """How many storages this process rebuilt from a worker's pickles (by descriptor or by file name).

    The worker pickles the module's function by name and this process looks it up by name, so the counting wrappers
    keep the originals' names (forked after the patch, the workers pickle them as such).
    """
    counts = Counter()
    for name in ("rebuild_storage_fd", "rebuild_storage_filename"):
        original = getattr(reductions, name)

        @functools.wraps(original)
        def counted(*args, _original=original):
            counts["storages"] += 1
            return _original(*args)

        monkeypatch.setattr(reductions, name, counted)
    return counts


def _batches(model_dir, train_file, tmp_path, workers: int, **options) -> list[dict]:
    datamodule = SimCSEDataModule(
        str(train_file),
        tokenizer_name_or_path=str(model_dir),
        batch_size=4,
        max_seq_length=16,
        num_workers=workers,
        cache_dir=str(tmp_path / "cache"),
        seed=3,
        **options,
    )
    datamodule.setup("fit")
    return list(datamodule.train_dataloader())


@pytest.mark.parametrize("data", ["sentences", "scored"])
def test_a_worker_batch_arrives_in_one_storage_per_dtype(tiny_model_dir, tmp_path, rebuilt, data):
    if data == "sentences":
        train_file, options, dtypes = tmp_path / "corpus.txt", {"mlm_probability": 0.15}, 1
        train_file.write_text("".join(f"{sentence}\n" for sentence in SENTENCES))
    else:
        train_file, options, dtypes = tmp_path / "pairs.csv", {}, 2  # int64 tokens, float32 scores
        rows = [f"{SENTENCES[index]},{SENTENCES[index + 1]},{index / 40}" for index in range(len(SENTENCES) - 1)]
        train_file.write_text("sentence1,sentence2,score\n" + "".join(f"{row}\n" for row in rows))
    by_workers = _batches(tiny_model_dir, train_file, tmp_path, workers=2, **options)
    assert rebuilt["storages"] == dtypes * len(by_workers)
    assert len(by_workers[0]) == (5 if data == "sentences" else 4)  # tensors that came in those storages
    alone = _batches(tiny_model_dir, train_file, tmp_path, workers=0, **options)
    assert len(by_workers) == len(alone) > 1
    for got, expected in zip(by_workers, alone, strict=True):
        assert got.keys() == expected.keys()
        for key in ("input_ids", "attention_mask", "token_type_ids", "score"):  # the MLM masks are drawn per worker
            if key in expected:
                assert torch.equal(got[key], expected[key]) and got[key].dtype == expected[key].dtype
