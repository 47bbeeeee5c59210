"""`data.tokenize: in_workers` against `ahead`: the same batches, the same shards, the same resumed position."""

import hashlib
from types import SimpleNamespace

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel, ByT5Tokenizer

from cse.data import datamodule as datamodule_module
from cse.data import worker_tokenization
from cse.data.datamodule import SimCSEDataModule
from cse.errors import InputError

SENTENCES = [f"sentence {index} about {'a big ' * (index % 5)}dog number {index * 7}" for index in range(48)]


def _datamodule(model_dir, train_file, tmp_path, **options) -> SimCSEDataModule:
    options = {"batch_size": 4, "max_seq_length": 12, "cache_dir": str(tmp_path / "cache"), **options}
    return SimCSEDataModule(str(train_file), tokenizer_name_or_path=str(model_dir), **options)


def _as_process(datamodule: SimCSEDataModule, world_size: int, rank: int) -> SimCSEDataModule:
    """What `train_dataloader` reads of the trainer of DDP process `rank` of `world_size`."""
    datamodule.trainer = SimpleNamespace(
        world_size=world_size, global_rank=rank, check_val_every_n_epoch=None, limit_val_batches=0
    )
    return datamodule


def _loader(datamodule: SimCSEDataModule, epoch: int = 0):
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    loader.sampler.set_epoch(epoch)  # as Lightning does at each epoch start
    return loader


def _digest(batch: dict) -> str:
    return hashlib.sha1(b"".join(batch[key].numpy().tobytes() for key in sorted(batch))).hexdigest()


def _texts(batch: dict, tokenizer) -> list[str]:
    """The sentence of each row, decoded from its first view."""
    return tokenizer.batch_decode(batch["input_ids"][:, 0], skip_special_tokens=True)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("".join(f"{sentence}\n" for sentence in SENTENCES))
    return path


@pytest.fixture
def triplets(tmp_path):
    path = tmp_path / "triplets.csv"
    rows = [f"{s},other {s},not {s}" for s in SENTENCES]
    path.write_text("anchor,positive,negative\n" + "".join(f"{row}\n" for row in rows))
    return path


@pytest.mark.parametrize("data", ["corpus", "triplets"])
@pytest.mark.parametrize("options", [{}, {"mlm_probability": 0.15, "num_workers": 2}], ids=["plain", "mlm-workers"])
def test_in_workers_gives_the_batches_of_ahead(tiny_model_dir, tmp_path, request, data, options):
    train_file = request.getfixturevalue(data)
    epochs = {}
    for tokenize in ("ahead", "in_workers"):
        datamodule = _datamodule(tiny_model_dir, train_file, tmp_path, tokenize=tokenize, seed=5, **options)
        torch.manual_seed(0)  # the MLM masks (drawn in the main process without workers, seeded per worker with)
        epochs[tokenize] = [[_digest(batch) for batch in _loader(datamodule, epoch)] for epoch in range(2)]
    assert len(epochs["ahead"][0]) == 12 and epochs["ahead"][0] != epochs["ahead"][1]
    assert epochs["in_workers"] == epochs["ahead"]


@pytest.mark.parametrize("workers", [0, 2])
def test_in_workers_gives_the_word_repetition_of_ahead(tiny_model_dir, corpus, tmp_path, workers):
    """ESimCSE's repeated positives are seeded by the row's index, which in-worker tokenization passes on."""
    batches = {}
    for tokenize in ("ahead", "in_workers"):
        datamodule = _datamodule(
            tiny_model_dir, corpus, tmp_path, tokenize=tokenize, seed=5, word_repetition_rate=0.32, num_workers=workers
        )
        batches[tokenize] = list(_loader(datamodule))
    assert all(batch["input_ids"].size(1) == 2 for batch in batches["ahead"])
    lengths = [batch["attention_mask"].sum(-1) for batch in batches["ahead"]]
    assert any((length[:, 1] > length[:, 0]).any() for length in lengths), "no positive got a repeated token"
    assert [_digest(batch) for batch in batches["in_workers"]] == [_digest(batch) for batch in batches["ahead"]]


def test_in_workers_gives_the_word_ids_of_ahead(tiny_model_dir, corpus, tmp_path):
    """TSDAE's word ids (`data.word_ids`, set from model.objective) come from the same tokenizer call either way."""
    batches = {}
    for tokenize in ("ahead", "in_workers"):
        datamodule = _datamodule(tiny_model_dir, corpus, tmp_path, tokenize=tokenize, seed=5, word_ids=True)
        batches[tokenize] = list(_loader(datamodule))
    assert all("word_ids" in batch and batch["word_ids"].max() > 0 for batch in batches["ahead"])
    assert [_digest(batch) for batch in batches["in_workers"]] == [_digest(batch) for batch in batches["ahead"]]


def test_in_workers_gives_the_duplicate_free_batches_of_ahead(tiny_model_dir, triplets, tmp_path):
    """The duplicate-free sampler needs only the rows' text ids, computed from the texts either way."""
    batches = {}
    for tokenize in ("ahead", "in_workers"):
        datamodule = _datamodule(tiny_model_dir, triplets, tmp_path, tokenize=tokenize, seed=5, no_duplicates=True)
        batches[tokenize] = list(_loader(datamodule))
    assert len(batches["ahead"]) == 12
    assert [_digest(batch) for batch in batches["in_workers"]] == [_digest(batch) for batch in batches["ahead"]]


def test_in_workers_rows_are_the_tokenizers_output_in_the_seeded_order(tiny_model_dir, corpus, tmp_path):
    datamodule = _datamodule(tiny_model_dir, corpus, tmp_path, tokenize="in_workers", seed=3, pad_to_multiple_of=None)
    batch = next(iter(_loader(datamodule)))
    order = torch.randperm(len(SENTENCES), generator=torch.Generator().manual_seed(3))[:4].tolist()  # epoch 0
    expected = datamodule.tokenizer([SENTENCES[i] for i in order], truncation=True, max_length=12, padding=True)
    assert batch["input_ids"][:, 0].tolist() == expected["input_ids"]
    assert batch["attention_mask"][:, 0].tolist() == expected["attention_mask"]


def test_in_workers_does_not_tokenize_at_start(tiny_model_dir, corpus, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("tokenized ahead")

    monkeypatch.setattr(datamodule_module, "tokenize_examples", refuse)
    datamodule = _datamodule(tiny_model_dir, corpus, tmp_path, tokenize="in_workers")
    datamodule.prepare_data()
    datamodule.setup("fit")
    assert datamodule.train_dataset.column_names == ["sent0"] and len(datamodule.train_dataset) == len(SENTENCES)


def test_shards_of_two_processes_and_two_workers_cover_the_data_once(tiny_model_dir, corpus, tmp_path):
    for epoch in range(2):
        seen = []
        for rank in range(2):
            datamodule = _datamodule(tiny_model_dir, corpus, tmp_path, tokenize="in_workers", num_workers=2)
            loader = _loader(_as_process(datamodule, world_size=2, rank=rank), epoch)
            assert len(loader) == 6
            seen += [text for batch in loader for text in _texts(batch, datamodule.tokenizer)]
        expected = datamodule.tokenizer.batch_decode(
            datamodule.tokenizer(SENTENCES, truncation=True, max_length=12)["input_ids"], skip_special_tokens=True
        )
        assert sorted(seen) == sorted(expected), f"epoch {epoch}: each sentence exactly once over ranks and workers"


@pytest.mark.parametrize("taken", [1, 7])
def test_resumed_in_workers_loader_continues_exactly(tiny_model_dir, corpus, tmp_path, taken):
    options = {"tokenize": "in_workers", "num_workers": 2, "seed": 11}
    reference = [_digest(batch) for batch in _loader(_datamodule(tiny_model_dir, corpus, tmp_path, **options), 1)]
    interrupted = _loader(_datamodule(tiny_model_dir, corpus, tmp_path, **options), 1)
    iterator = iter(interrupted)
    seen = [_digest(next(iterator)) for _ in range(taken)]
    state = interrupted.state_dict()
    del iterator
    resumed_module = _datamodule(tiny_model_dir, corpus, tmp_path, **{**options, "seed": 99})  # a new seed_everything
    resumed_module.setup("fit")
    resumed = resumed_module.train_dataloader()
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(1)
    assert seen + [_digest(batch) for batch in resumed] == reference


def test_auto_tokenizes_in_workers_from_the_size_threshold_on(tiny_model_dir, corpus, tmp_path, monkeypatch):
    assert not _datamodule(tiny_model_dir, corpus, tmp_path).tokenize_in_workers  # the default: auto, a small file
    monkeypatch.setattr(worker_tokenization, "AUTO_IN_WORKERS_BYTES", corpus.stat().st_size)
    assert _datamodule(tiny_model_dir, corpus, tmp_path).tokenize_in_workers
    assert not _datamodule(tiny_model_dir, corpus, tmp_path, tokenize="ahead").tokenize_in_workers


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tokenize": "lazy"}, r"^data.tokenize: 'lazy' is not one of ahead, in_workers, auto$"),
    ],
)
def test_bad_tokenize_settings_are_one_line(tiny_model_dir, corpus, tmp_path, options, message):
    with pytest.raises(InputError, match=message) as error:
        _datamodule(tiny_model_dir, corpus, tmp_path, **options)
    assert "\n" not in str(error.value)


@pytest.fixture(scope="module")
def python_tokenizer_model_dir(tmp_path_factory):
    """A random tiny BERT whose tokenizer is ByT5's, a Python (not fast) tokenizer that AutoTokenizer loads as such."""
    directory = tmp_path_factory.mktemp("python-tokenizer-bert")
    tokenizer = ByT5Tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37
    )
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    assert not AutoTokenizer.from_pretrained(directory).is_fast
    return directory


@pytest.mark.parametrize("tokenize", ["ahead", "in_workers"])
def test_tsdae_with_a_python_tokenizer_is_one_line_at_start(python_tokenizer_model_dir, corpus, tmp_path, tokenize):
    """TSDAE's word ids need a fast tokenizer: refused when the data module is built, before any batch (in_workers
    tokenized nothing at start and failed in the first batch with a traceback)."""
    with pytest.raises(InputError, match=r"^model.objective: tsdae .* needs a fast tokenizer .*ByT5Tokenizer") as error:
        _datamodule(python_tokenizer_model_dir, corpus, tmp_path, tokenize=tokenize, word_ids=True)
    assert "\n" not in str(error.value)
    _loader(_datamodule(python_tokenizer_model_dir, corpus, tmp_path, tokenize=tokenize))  # SimCSE needs no word ids
