import logging
import warnings

import lightning
import pytest
import torch

from cse.data import training_data
from cse.data.datamodule import SimCSEDataModule
from cse.errors import InputError


def _datamodule(model_dir, train_file, tmp_path, **options) -> SimCSEDataModule:
    options = {"batch_size": 4, "max_seq_length": 16, **options}
    return SimCSEDataModule(
        str(train_file), tokenizer_name_or_path=str(model_dir), cache_dir=str(tmp_path / "cache"), **options
    )


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "corpus.txt"
    lines = [f"sentence number {index} is about a dog in the park" for index in range(10)]
    path.write_text("\n".join(lines[:5]) + "\n\n   \n" + "\n".join(lines[5:]) + "\n")
    return path


def test_blank_lines_are_skipped_and_sentences_truncated(tiny_model_dir, corpus_file, tmp_path):
    datamodule = _datamodule(tiny_model_dir, corpus_file, tmp_path, max_seq_length=8)
    datamodule.prepare_data()
    datamodule.setup("fit")
    assert len(datamodule.train_dataset) == 10
    assert max(len(views[0]) for views in datamodule.train_dataset["input_ids"]) == 8
    first = datamodule.tokenizer("sentence number 0 is about a dog in the park", truncation=True, max_length=8)
    assert datamodule.train_dataset[0]["input_ids"] == [first["input_ids"]]


def test_tokenization_is_cached_for_the_next_run(tiny_model_dir, corpus_file, tmp_path, monkeypatch):
    first_run = _datamodule(tiny_model_dir, corpus_file, tmp_path)
    first_run.setup("fit")
    calls = []
    original_map = training_data.Dataset.map

    def counting_map(self, function, *args, **kwargs):
        return original_map(self, lambda batch: calls.append(len(batch["sent0"])) or function(batch), *args, **kwargs)

    monkeypatch.setattr(training_data.Dataset, "map", counting_map)
    second_run = _datamodule(tiny_model_dir, corpus_file, tmp_path)
    second_run.setup("fit")
    assert calls == [], "the second run tokenized again instead of loading the cache"
    assert second_run.train_dataset["input_ids"] == first_run.train_dataset["input_ids"]
    longer = _datamodule(tiny_model_dir, corpus_file, tmp_path, max_seq_length=9)
    longer.setup("fit")
    assert sum(calls) == 10, "a different max_seq_length must not reuse the cache"


def test_batches_are_dynamically_padded_shuffled_and_full(tiny_model_dir, tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("".join(f"{'a ' * (index % 4 + 1)}dog {chr(ord('b') + index)}\n" for index in range(18)))
    datamodule = _datamodule(tiny_model_dir, path, tmp_path)
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    epochs = []
    for epoch in range(2):
        loader.sampler.set_epoch(epoch)  # as Lightning does at each epoch start: the order is a function of the epoch
        epochs.append(list(loader))
    for batches in epochs:
        assert len(batches) == 4  # 18 sentences, batch 4, drop_last
        for batch in batches:
            assert batch["input_ids"].shape[:2] == (4, 1)  # (B, k, L) with one view per sentence
            longest = batch["attention_mask"].sum(dim=-1).max().item()
            assert batch["input_ids"].size(2) == -(-longest // 8) * 8  # its longest, rounded up to a multiple of 8
    order = [[tuple(row[row != 0].tolist()) for batch in batches for row in batch["input_ids"]] for batches in epochs]
    assert len(set(order[0])) == 16
    assert order[0] != order[1], "the corpus must be reshuffled each epoch"


def test_loaders_draw_nothing_from_the_global_generator(tiny_model_dir, corpus_file, tiny_data, tmp_path):
    """Dropout draws from the global generator: a loader's iterator must not move it (a resumed run makes one for the
    validation it skips, an uninterrupted one does not)."""
    datamodule = _datamodule(tiny_model_dir, corpus_file, tmp_path, dev_file=str(tiny_data.dev_file))
    datamodule.setup("fit")
    for loader in (datamodule.train_dataloader(), datamodule.val_dataloader()):
        torch.manual_seed(0)
        expected = torch.get_rng_state()
        iter(loader)
        assert torch.equal(torch.get_rng_state(), expected), type(loader).__name__


def test_dev_pairs_share_one_batch_longest_first_padded_to_its_longest_sentence(
    tiny_model_dir, corpus_file, tiny_data, tmp_path
):
    datamodule = _datamodule(tiny_model_dir, corpus_file, tmp_path, dev_file=str(tiny_data.dev_file), eval_batch_size=8)
    assert datamodule.pad_to_multiple_of == 8  # for training batches (half-precision tiles); dev pairs encode in fp32
    datamodule.setup("validate")
    batches = list(datamodule.val_dataloader())
    rows = [line.split("\t") for line in tiny_data.dev_file.read_text().splitlines()[1:]]
    ids = [datamodule.tokenizer([first, second])["input_ids"] for first, second, _ in rows]
    # Written out: pairs by their longer sentence's token count, longest first, ties in file order.
    order = sorted(range(len(rows)), key=lambda index: -max(len(ids[index][0]), len(ids[index][1])))
    assert order != list(range(len(rows)))  # the order differs from the file's
    assert sum(batch["score"].shape[0] for batch in batches) == len(rows)
    for number, batch in enumerate(batches):
        pairs = order[8 * number : 8 * number + 8]
        assert batch["input_ids"].shape[0] == 2 * len(pairs) and batch["score"].shape == (len(pairs),)
        assert batch["input_ids"].shape[1] == max(len(ids[index][k]) for index in pairs for k in (0, 1))
        for row, index in enumerate(pairs):
            first, second = ids[index]
            assert batch["input_ids"][row][: len(first)].tolist() == first
            assert batch["input_ids"][len(pairs) + row][: len(second)].tolist() == second
        assert batch["score"].tolist() == pytest.approx([float(rows[index][2]) for index in pairs])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "file is empty"),
        ("\n  \n\n", "no sentences"),
        (b"\x00\x01\x02", "binary"),
        (b"ok\nbad \xff\n", "line 2: not valid UTF-8"),
    ],
)
def test_bad_corpus(tiny_model_dir, tmp_path, content, message):
    path = tmp_path / "corpus.txt"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    datamodule = _datamodule(tiny_model_dir, path, tmp_path)
    with pytest.raises(InputError, match=message):
        datamodule.setup("fit")


def test_corpus_path_errors(tiny_model_dir, tmp_path):
    with pytest.raises(InputError, match="no such file"):
        _datamodule(tiny_model_dir, tmp_path / "missing.txt", tmp_path).setup("fit")
    with pytest.raises(InputError, match="a directory, but not one written by datasets' save_to_disk"):
        _datamodule(tiny_model_dir, tmp_path, tmp_path).setup("fit")


def test_batch_larger_than_corpus(tiny_model_dir, corpus_file, tmp_path):
    with pytest.raises(InputError, match="batch_size: 64 is larger than the training data .*corpus.txt"):
        _datamodule(tiny_model_dir, corpus_file, tmp_path, batch_size=64).setup("fit")


def test_missing_dev_file_fails_at_construction(tiny_model_dir, corpus_file, tmp_path):
    with pytest.raises(InputError, match="dev file .*missing.tsv: no such file"):
        _datamodule(tiny_model_dir, corpus_file, tmp_path, dev_file=str(tmp_path / "missing.tsv"))


@pytest.mark.parametrize(("seed_everything", "data_seed", "order_seed"), [(1, None, 1), (2, None, 2), (2, 7, 7)])
def test_training_order_follows_seed_everything_unless_data_seed_is_set(
    tiny_model_dir, corpus_file, tmp_path, monkeypatch, seed_everything, data_seed, order_seed
):
    """As SimCSE's `--seed`, which seeds the shuffle too: a sweep over seed_everything varies the order."""
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
    lightning.seed_everything(seed_everything)
    datamodule = _datamodule(tiny_model_dir, corpus_file, tmp_path, batch_size=2, seed=data_seed)
    datamodule.setup("fit")
    order = list(datamodule.train_dataloader().sampler)
    # torch's DistributedSampler on one process: a permutation seeded with seed + epoch (epoch 0).
    assert order == torch.randperm(10, generator=torch.Generator().manual_seed(order_seed)).tolist()


def test_loaders_pin_memory_when_a_gpu_is_present(tiny_model_dir, corpus_file, tiny_data, tmp_path, monkeypatch):
    """Pinned host memory lets Lightning copy each batch to the GPU without blocking (`non_blocking=True`)."""
    datamodule = _datamodule(tiny_model_dir, corpus_file, tmp_path, dev_file=str(tiny_data.dev_file))
    datamodule.setup("fit")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert datamodule.train_dataloader().pin_memory and datamodule.val_dataloader().pin_memory
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert not datamodule.train_dataloader().pin_memory and not datamodule.val_dataloader().pin_memory


def test_no_duplicates_compares_the_texts_normalized(tiny_model_dir, tmp_path):
    """Premises repeated with other case and spacing (and a hypothesis equal to a premise) never share a batch."""
    path = tmp_path / "pairs.csv"
    rows = [(f"{'A' if index % 2 else 'a'}  dog number {index // 4}", f"hypothesis {index}") for index in range(40)]
    rows[5] = (rows[5][0], "A DOG NUMBER 7")
    path.write_text("sent0,sent1\n" + "".join(f"{first},{second}\n" for first, second in rows))
    datamodule = _datamodule(tiny_model_dir, path, tmp_path, no_duplicates=True, seed=1)
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    batches = loader.sampler.batches().tolist()
    assert len(batches) >= 5
    for batch in batches:
        texts = [" ".join(text.lower().split()) for index in batch for text in rows[index]]
        assert len(set(texts)) == len(texts), f"a text repeats in batch {batch}"


def test_no_duplicates_without_one_duplicate_free_batch_is_one_line(tiny_model_dir, tmp_path):
    """Three premises, each in many rows: no batch of four rows without a premise twice (Lightning would stop at once,
    untrained, with exit status 0)."""
    path = tmp_path / "pairs.csv"
    path.write_text("sent0,sent1\n" + "".join(f"premise {index % 3},hypothesis {index}\n" for index in range(30)))
    datamodule = _datamodule(tiny_model_dir, path, tmp_path, no_duplicates=True)
    with pytest.raises(InputError) as error:  # in `setup`, with the other settings the data decides
        datamodule.setup("fit")
    assert str(error.value) == (
        f"data.no_duplicates: {path} (30 examples) has no 4 rows without a text in common to form one batch; lower "
        "data.batch_size, or set data.no_duplicates: false"
    )
    three = _datamodule(tiny_model_dir, path, tmp_path, no_duplicates=True, batch_size=3)
    three.setup("fit")
    assert len(three.train_dataloader()) > 0  # three premises: batches of three can be formed


def test_setup_warns_of_columns_the_header_leaves_out(tiny_model_dir, tmp_path, caplog):
    path = tmp_path / "pairs.csv"
    path.write_text("sent0,sent1,Score\n" + "".join(f"a dog {index},a cat {index},{index}\n" for index in range(8)))
    datamodule = _datamodule(tiny_model_dir, path, tmp_path)
    with caplog.at_level(logging.INFO):
        datamodule.prepare_data()
        datamodule.setup("fit")
    said = [record.getMessage() for record in caplog.records if "not used" in record.getMessage()]
    assert said == [
        f"warning: training data {path}: column(s) 'Score' not used; read as pairs from {{sent0: 'sent0', "
        "sent1: 'sent1'} (set data.columns to train on others)"
    ]
    assert datamodule.mode == "pairs"


def test_skipped_bad_rows_are_said_once_in_one_plain_line(tiny_model_dir, tmp_path, caplog):
    """`prepare_data` then `setup` read the data twice in one process; the warning is said once, not as a Python
    `UserWarning` (which printed cse's source line)."""
    path = tmp_path / "train.csv"
    path.write_text("sent0,sent1\n" + "".join(f"a dog {index},the dog {index}\n" for index in range(8)) + "a cat,\n")
    datamodule = _datamodule(tiny_model_dir, path, tmp_path, on_bad_rows="skip")
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO):
        warnings.simplefilter("always")
        datamodule.prepare_data()
        datamodule.setup("fit")
    said = [record.getMessage() for record in caplog.records if "bad rows" in record.getMessage()]
    assert said == [f"warning: skipped 1 bad rows of {path} (first: line 10: column 'sent1' is empty)"]
    assert [str(warning.message) for warning in caught if "bad rows" in str(warning.message)] == []
    assert len(datamodule.train_dataset) == 8
