"""scripts/benchmark.py on the tiny model: every side gets the same sentences in the same batches and does the same
work, the sentence-transformers comparison, and the speed options it measures: no per-step host synchronization,
`model.compile`."""

import importlib
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from cuda_syncs import watching_training_steps
from lightning.pytorch import Trainer
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader
from transformers import AutoTokenizer, BertConfig

from cse.data.datamodule import SimCSEDataModule
from cse.models.batch import TrainingBatch
from cse.models.loading import load_tokenizer
from cse.models.optimization import build_optimizer, fuses
from cse.models.simcse import SimCSE

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: several times faster on 2 busy cores

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(scope="module")
def scripts() -> Iterator[SimpleNamespace]:
    """scripts/benchmark.py and its sibling modules, imported by name with scripts/ first on sys.path, as
    `python scripts/benchmark.py` imports them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(SCRIPTS))
        yield SimpleNamespace(
            benchmark=importlib.import_module("benchmark"),
            data=importlib.import_module("benchmark_data"),
            floor=importlib.import_module("benchmark_floor"),
            peer=importlib.import_module("benchmark_peer"),
            model=importlib.import_module("benchmark_model"),
        )


def test_prints_both_sides_and_ends_with_the_ratio(scripts, tiny_model_dir, capsys):
    # 12 steps of each under bf16 autocast on CPU.
    options = ["--steps", "10", "--warmup", "2", "--batch-size", "4", "--precision", "bf16-mixed", "--device", "cpu"]
    scripts.benchmark.main(["--model", str(tiny_model_dir), *options])
    lines = capsys.readouterr().out.strip().splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.startswith(("cse ", "floor "))}
    assert set(rows) == {"cse", "floor"} and all(float(row[0]) > 0 for row in rows.values())
    assert "10 timed steps of each after 2 warm-up" in lines[0]
    rate = float(rows["cse"][0])
    projected = re.fullmatch(r"cse: 15,625 steps \(one wiki1m epoch at batch 64\) would take (\d+\.\d) min", lines[-2])
    assert projected and float(projected[1]) == pytest.approx(15_625 / rate / 60, rel=0.01, abs=0.1)
    assert re.fullmatch(r"ratio cse/floor: \d+\.\d\d", lines[-1])


def _data_module(
    scripts, model_dir: Path, sentences: list[str], batch_size: int, length: int, tmp_path: Path, **options
):
    """cse's data module over `sentences` written as the benchmark writes them, set up for training."""
    train_file = tmp_path / "sentences.txt"
    scripts.data.write_in_sampler_order(sentences, train_file)
    data = SimCSEDataModule(
        str(train_file),
        tokenizer_name_or_path=str(model_dir),
        batch_size=batch_size,
        max_seq_length=length,
        cache_dir=str(tmp_path / "cache"),
        seed=scripts.data.SEED,
        **options,
    )
    data.setup("fit")
    return data


@pytest.mark.parametrize("pad_to_max_length", [False, True])  # True with --compile
def test_every_side_gets_the_same_batches_in_the_same_order(scripts, tiny_model_dir, tmp_path, pad_to_max_length):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    sentences = scripts.data.make_sentences(tokenizer, scripts.data.sentence_lengths(5, 4, 12, shortest=3))
    args = scripts.benchmark.parse_args(["--model", str(tiny_model_dir), "--batch-size", "4", "--max-seq-length", "12"])
    data = _data_module(scripts, tiny_model_dir, sentences, 4, 12, tmp_path, pad_to_max_length=pad_to_max_length)
    cse_batches = list(data.train_dataloader())
    floor_batches = list(
        scripts.data.floor_loader(tokenizer, sentences, args, data.pad_to_multiple_of, pad_to_max_length)
    )
    assert len(cse_batches) == len(floor_batches) == 5
    for step, (cse, floor) in enumerate(zip(cse_batches, floor_batches, strict=True)):
        # Batch k holds sentences [4k, 4k + 4) on every side, its first of 12 tokens; cse pads to a multiple of 8.
        expected = tokenizer(
            sentences[4 * step : 4 * step + 4], padding=True, pad_to_multiple_of=8, return_tensors="pt"
        )
        assert expected["input_ids"].shape == (4, 16) and data.pad_to_multiple_of == 8
        torch.testing.assert_close(cse["input_ids"][:, 0], expected["input_ids"])
        torch.testing.assert_close(floor["input_ids"], expected["input_ids"])
        torch.testing.assert_close(floor["attention_mask"], cse["attention_mask"][:, 0])


def test_the_floor_does_the_same_work_as_cse(scripts, tiny_model_dir, tmp_path):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    sentences = scripts.data.make_sentences(tokenizer, scripts.data.sentence_lengths(1, 6, 10, shortest=3))
    args = scripts.benchmark.parse_args(["--model", str(tiny_model_dir), "--batch-size", "6", "--max-seq-length", "10"])
    module = SimCSE(str(tiny_model_dir), pooler_type="cls").eval()  # no dropout: the two losses must be equal
    batch = next(iter(_data_module(scripts, tiny_model_dir, sentences, 6, 10, tmp_path).train_dataloader()))
    loader = scripts.data.floor_loader(tokenizer, sentences, args, None)
    floor = scripts.floor.FloorLoop(module, str(tiny_model_dir), loader, args, 1)
    floor.backbone.eval()
    module.log = lambda *args, **kwargs: None
    module.lr_schedulers = lambda: floor.scheduler
    torch.testing.assert_close(floor.step(), module.training_step(batch, 0).detach(), atol=1e-5, rtol=1e-5)


def test_sentence_transformers_takes_the_batches_in_the_same_order(scripts):
    sampler = scripts.peer._batches_in_order(range(10), batch_size=4, drop_last=True, generator=None, seed=0)
    assert list(sampler) == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_the_floor_fuses_adamw_where_cse_does(scripts, tiny_model_dir):
    args = scripts.benchmark.parse_args(["--model", str(tiny_model_dir), "--device", "cpu"])
    module = SimCSE(str(tiny_model_dir))
    floor = scripts.floor.FloorLoop(module, str(tiny_model_dir), DataLoader([]), args, 1)
    optimizer, _ = build_optimizer(module, 3.0e-5, 0.0, 0, 1)
    assert floor.optimizer.defaults["fused"] == optimizer.defaults["fused"] == fuses(floor.parameters)


@pytest.mark.parametrize("name", ["tiny", "minilm", "random bert-base"])
def test_sentences_tokenize_to_the_drawn_lengths(scripts, tiny_model_dir, minilm_dir, name):
    tokenizers = {
        "tiny": lambda: AutoTokenizer.from_pretrained(str(tiny_model_dir)),
        "minilm": lambda: AutoTokenizer.from_pretrained(str(minilm_dir)),
        "random bert-base": lambda: scripts.model.word_tokenizer(BertConfig().vocab_size, 512),
    }
    tokenizer = tokenizers[name]()
    lengths = scripts.data.sentence_lengths(6, 16, 32, shortest=3, seed=1)  # 6 batches of 16 sentences
    assert (lengths[:, 0] == 32).all() and lengths.min() >= 17  # from L/2 + 1 to L, the first of each batch at L
    sentences = scripts.data.make_sentences(tokenizer, lengths, seed=1)
    ids = tokenizer(sentences)["input_ids"]  # the tokenizer itself, not the benchmark's own check
    assert [len(sentence_ids) for sentence_ids in ids] == lengths.flatten().tolist()
    assert [len(sentence.split()) + 2 for sentence in sentences] == lengths.flatten().tolist()  # one token a word
    assert not any(tokenizer.unk_token_id in sentence_ids for sentence_ids in ids)


def test_the_random_model_tokenizer_fills_its_vocabulary(scripts):
    tokenizer = scripts.model.word_tokenizer(BertConfig().vocab_size, 512)
    assert len(tokenizer) == BertConfig().vocab_size
    assert tokenizer("ab zz")["input_ids"] == [2, *tokenizer.convert_tokens_to_ids(["ab", "zz"]), 3]


def test_rejects_fp16_on_cpu(scripts):
    with pytest.raises(SystemExit):
        scripts.benchmark.parse_args(["--model", "m", "--device", "cpu", "--precision", "16-mixed"])


@pytest.mark.parametrize(
    "options",
    [
        ["--random-init-config", "bert-base"],  # sentence-transformers loads a model directory
        ["--model", "m", "--device", "cpu", "--precision", "bf16-mixed"],  # on CPU only 32-true compares
    ],
)
def test_compare_sentence_transformers_needs_a_model_and_fp32_on_cpu(scripts, options, capsys):
    with pytest.raises(SystemExit) as exit_:
        scripts.benchmark.parse_args([*options, "--compare-sentence-transformers"])
    assert exit_.value.code == 2 and "--compare-sentence-transformers" in capsys.readouterr().err


def test_compares_sentence_transformers_in_the_same_run(scripts, tiny_model_dir, capsys):
    options = ["--steps", "2", "--warmup", "1", "--batch-size", "4", "--max-seq-length", "8", "--device", "cpu"]
    scripts.benchmark.main(["--model", str(tiny_model_dir), *options, "--compare-sentence-transformers"])
    lines = capsys.readouterr().out.strip().splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.startswith(("cse ", "floor ", "sentence-"))}
    assert set(rows) == {"cse", "floor", "sentence-transformers"} and all(float(row[0]) > 0 for row in rows.values())
    peer = re.fullmatch(r"ratio cse/sentence-transformers: (\d+\.\d\d)", lines[-2])
    rates = float(rows["cse"][0]) / float(rows["sentence-transformers"][0])
    assert peer and float(peer[1]) == pytest.approx(rates, abs=0.01)
    assert re.fullmatch(r"ratio cse/floor: \d+\.\d\d", lines[-1])


def test_compile_compiles_every_side_in_the_mode(scripts, tiny_model_dir, monkeypatch, capsys):
    modes = []
    monkeypatch.setattr(torch, "compile", lambda function, **options: modes.append(options["mode"]) or function)
    padded = []
    collate = SimCSEDataModule.train_dataloader
    monkeypatch.setattr(
        SimCSEDataModule,
        "train_dataloader",
        lambda self: padded.append(self.pad_to_max_length) or collate(self),
    )
    options = ["--steps", "1", "--warmup", "0", "--batch-size", "4", "--max-seq-length", "8", "--device", "cpu"]
    scripts.benchmark.main(
        ["--model", str(tiny_model_dir), *options, "--compile", "max-autotune", "--compare-sentence-transformers"]
    )
    assert modes == ["max-autotune"] * 3 and padded == [True]  # cse's encoder, the floor's, sentence-transformers'
    assert re.fullmatch(r"ratio cse/floor: \d+\.\d\d", capsys.readouterr().out.strip().splitlines()[-1])


def test_a_training_step_waits_for_no_gpu_in_cse_or_lightning(scripts, tiny_model_dir, tmp_path, monkeypatch):
    """The benchmark's cse side, `cse fit`'s callbacks and logger: after the first step, which makes Lightning's
    logged-metric states, no step reads a device value or copies a Python one to the device (see `cuda_syncs`).
    transformers' own check of the attention mask (`mask.all()`, once per forward) is not cse's or Lightning's code;
    the floor and sentence-transformers make it too."""
    ids = torch.randint(60, 70, (8, 1, 12))
    batch = TrainingBatch(input_ids=ids, attention_mask=torch.ones_like(ids))  # (B, 1, L): unsupervised
    trainer = Trainer(
        accelerator="cpu",
        max_steps=4,
        limit_val_batches=0,
        gradient_clip_val=1.0,
        logger=CSVLogger(tmp_path),
        callbacks=scripts.benchmark.cse_fit_callbacks(str(tmp_path)),
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with watching_training_steps(SimCSE, monkeypatch) as watched:
        trainer.fit(SimCSE(str(tiny_model_dir)), train_dataloaders=DataLoader([batch] * 4, batch_size=None))
    waits = watched.own_code_waits()
    assert list(waits) == [0, 1, 2, 3] and not any(waits[step] for step in (1, 2, 3)), waits


def test_compile_option_compiles_the_encoder_in_place(tiny_model_dir, monkeypatch):
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda function, **options: compiled.append(function) or function)
    eager, module = (SimCSE(str(tiny_model_dir), compile=flag) for flag in (False, True))
    assert len(compiled) == 1 and compiled[0].__self__ is module.encoder  # the encoder's call, not the whole module
    assert module.state_dict().keys() == eager.state_dict().keys()  # checkpoints load in either mode
