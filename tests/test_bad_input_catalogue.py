"""Every kind of bad input, through the `cse` entry point: exit status 2, one `error:` line naming the file, line
or key, no traceback, nothing half-written.

Each case prints its message; `pytest tests/test_bad_input_catalogue.py -rP` lists them all.
"""

import csv
import errno
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from datasets import Dataset, DatasetDict
from safetensors.torch import load_file
from transformers import AutoTokenizer

from cse.cli import main
from cse.export import directory as export

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SENTENCES = "a man is playing a guitar\na woman is in the park\n"


def _write(name: str, content: str | bytes) -> Callable[[Path], list[str]]:
    """A case whose training file `name` holds `content`."""

    def setup(directory: Path) -> list[str]:
        path = directory / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
        return ["--data.train_file", name]

    return setup


def _with(*overrides: str, files: dict[str, str] | None = None) -> Callable[[Path], list[str]]:
    """A case given by overrides, after writing `files` into the run directory."""

    def setup(directory: Path) -> list[str]:
        for name, content in (files or {}).items():
            (directory / name).write_text(content)
        return list(overrides)

    return setup


def _config_file(name: str, text: str) -> Callable[[Path], list[str]]:
    """A case run with `--config name`, a file holding `text`."""
    return _with("--config", name, files={name: text})


def _table(rows: int = 40) -> dict[str, list[str]]:
    return {"sent0": [f"a man is playing {i}" for i in range(rows)], "sent1": [f"a man plays {i}" for i in range(rows)]}


def _parquet(name: str, cut: Callable[[bytes], bytes]) -> Callable[[Path], list[str]]:
    """A case whose training file `name` is a good parquet file's bytes passed through `cut`."""

    def setup(directory: Path) -> list[str]:
        pq.write_table(pa.table(_table()), directory / name)
        (directory / name).write_bytes(cut((directory / name).read_bytes()))
        return ["--data.train_file", name]

    return setup


def _saved_dataset_without(relative: str) -> Callable[[Path], list[str]]:
    """A case whose training data is a `save_to_disk` directory with the file `relative` deleted."""

    def setup(directory: Path) -> list[str]:
        DatasetDict({"train": Dataset.from_dict(_table())}).save_to_disk(str(directory / "saved"))
        (directory / "saved" / relative).unlink()
        return ["--data.train_file", "saved"]

    return setup


def _mismatched_tokenizer(model_dir: Path) -> Callable[[Path], list[str]]:
    def setup(directory: Path) -> list[str]:
        shutil.copytree(model_dir, directory / "model")
        tokenizer = AutoTokenizer.from_pretrained(directory / "model")
        tokenizer.add_tokens(["zebra", "quokka"])  # without resize_token_embeddings
        tokenizer.save_pretrained(directory / "model")
        return ["--model.model_name_or_path", "model"]

    return setup


CASES = {
    "empty corpus": (_write("empty.txt", ""), "corpus empty.txt: file is empty"),
    "corpus of blank lines": (_write("blank.txt", "\n \n\t\n"), "corpus blank.txt: no sentences (only blank lines)"),
    "binary file": (_write("model.bin", b"\x7fELF\x02\x01\x00\x00"), "model.bin: unsupported format '.bin'"),
    "binary file named .txt": (_write("bin.txt", b"\x7fELF\x02\x01\x00\x00"), "corpus bin.txt line 1: contains NUL"),
    "non-UTF-8 bytes": (
        _write("latin1.txt", "a man is here\ncaf\xe9 au lait\n".encode("latin-1")),
        "corpus latin1.txt line 2: not valid UTF-8 (byte 0xe9 at column 4)",
    ),
    "one-line corpus": (
        _write("one.txt", "a single sentence\n"),
        "data.batch_size: 16 is larger than the training data one.txt (1 examples); no full batch can be formed",
    ),
    "a GPU asked for where torch sees none": (
        _with("--trainer.accelerator", "gpu"),
        "trainer.accelerator: gpu, but torch sees no CUDA GPU (",
    ),
    "every device of a CPU (Lightning's refusal)": (
        _with("--trainer.accelerator", "cpu", "--trainer.devices", "-1"),
        "trainer.accelerator cpu, trainer.devices -1, trainer.num_nodes 1, trainer.strategy auto, trainer.precision ",
    ),
    "weights in bfloat16": (
        _with("--trainer.precision", "bf16-true"),
        "trainer.precision: bf16-true keeps the weights and AdamW's state in bfloat16",
    ),
    "weights in float16": (
        _with("--trainer.precision", "16-true"),
        "trainer.precision: 16-true keeps the weights and AdamW's state in float16",
    ),
    "a seed numpy refuses": (
        _with("--seed_everything", "4294967296"),
        "seed_everything: seed 4294967296 is outside 0..4294967295, the seeds numpy accepts",
    ),
    "batch size larger than the data": (
        _with("--data.batch_size", "512"),
        "data.batch_size: 512 is larger than the training data",
    ),
    "fewer batches than the validation interval": (
        _with("--trainer.val_check_interval", "50", "--trainer.max_steps", "100"),
        "trainer.val_check_interval: 50 is more than the 18 training batches per epoch",
    ),
    "csv with a ragged row": (
        _write("ragged.csv", "sent0,sent1\na b,c d\ne f,g h,extra\n"),
        "training data ragged.csv line 3: 3 fields, the header has 2",
    ),
    "csv missing the mapped column": (
        _with(
            "--data.train_file",
            "pairs.csv",
            "--data.columns",
            '{"sent0": "premise", "sent1": "hypothesis"}',
            files={"pairs.csv": "premise,entailment\na b,c d\n"},
        ),
        "data.columns.sent1: no column 'hypothesis' in the data (columns: premise, entailment)",
    ),
    "unknown key in the column mapping": (
        _with(
            "--data.train_file",
            "pairs.csv",
            "--data.columns",
            '{"sent0": "premise", "anchor": "entailment"}',
            files={"pairs.csv": "premise,entailment\na b,c d\n"},
        ),
        "data.columns: unknown key 'anchor'; keys are sent0, sent1, hard_neg, score",
    ),
    "training score outside data.score_range": (
        _with(
            "--data.train_file",
            "scored.csv",
            "--data.score_range",
            "[0, 5]",
            files={"scored.csv": "sentence1,sentence2,score\na b,c d,4.5\ne f,g h,7\n"},
        ),
        "training data scored.csv line 3: column 'score': score 7.0 is outside data.score_range [0.0, 5.0]",
    ),
    "non-numeric training score": (
        _write("scored.csv", "sentence1,sentence2,score\na b,c d,high\n"),
        "training data scored.csv line 2: column 'score': score 'high' is not a number",
    ),
    "non-numeric dev score": (
        _with("--data.dev_file", "dev.tsv", files={"dev.tsv": "sentence1\tsentence2\tscore\na\tb\tfive\n"}),
        "dev.tsv line 2: score 'five' is not a number",
    ),
    "empty dev file": (_with("--data.dev_file", "dev.tsv", files={"dev.tsv": ""}), "dev file dev.tsv: file is empty"),
    "model path missing": (
        _with("--model.model_name_or_path", "./no/such/model"),
        "model './no/such/model': no such directory",
    ),
    "hub id while offline": (
        _with("--model.model_name_or_path", "someone/not-downloaded"),
        "model 'someone/not-downloaded': not a local model directory, and loading it from the Hugging Face hub failed",
    ),
    "output directory cannot be created": (
        _with("--trainer.logger.init_args.save_dir", "a_file/runs", files={"a_file": "not a directory\n"}),
        "a_file/runs/quickstart: Not a directory",  # the run folder is claimed (created) before anything else
    ),
    "cache folder that is a file": (
        _with("--data.cache_dir", "notes.txt", files={"notes.txt": "mine\n"}),
        "data.cache_dir: notes.txt is a file; give a folder (made if missing)",  # was 'notes.txt/cse-tokenized: Not a'
    ),
    "resume from a checkpoint that does not exist": (
        _with("--ckpt_path", "runs/nothing.ckpt"),
        "--ckpt_path runs/nothing.ckpt: no such checkpoint file",
    ),
    "resume from a directory": (
        lambda directory: (directory / "a_run").mkdir() or ["--ckpt_path", "a_run"],
        "--ckpt_path a_run: is a directory; give a checkpoint file (a run's is in its checkpoints/)",
    ),
    "config typo (unknown key)": (
        _config_file("typo.yaml", "model:\n  temperture: 0.1\n"),
        "Subcommand 'fit' does not accept option 'model.temperture'",
    ),
    "numbers inferred to be text (a BOM-prefixed csv whose score column is named sim)": (
        _write("bom.csv", "\ufeffs1,s2,sim\na man is here,a man,4.5\na dog,the park,0.5\n".encode()),
        "training data bom.csv: column 'sim' holds only numbers, so it is not the hard negative text (hard_neg) that "
        "the header made it; for scored pairs set data.columns: {sent0: s1, sent1: s2, score: sim}",
    ),
    "non-finite training score": (
        _write("scored.jsonl", '{"sentence1": "a b", "sentence2": "c d", "score": NaN}\n'),
        "training data scored.jsonl line 1: column 'score': score nan is not finite",
    ),
    "training score too large for float32": (
        _write("scored.csv", "sentence1,sentence2,score\na b,c d,1\ne f,g h,1" + "0" * 60 + "\n"),
        "training data scored.csv line 3: column 'score': score '10000000000000000000...00000000 (61 characters)' is "
        "too large (beyond float32's ±3.4e38)",
    ),
    "csv with a broken quote": (
        _write("quote.csv", 'sent0,sent1\na b,c d\n"e f,g h\ni j,k l\n'),
        "training data quote.csv line 3: a quoted field is not closed on this line (a missing quote? a row must be "
        "one line)",
    ),
    "truncated jsonl": (
        _write("cut.jsonl", '{"sent0": "a b", "sent1": "c d"}\n{"sent0": "e f", "se'),
        "training data cut.jsonl line 2: not valid JSON at column 18 (Unterminated string starting at)",
    ),
    "truncated json": (
        _write("cut.json", '[{"sent0": "a b", "sent1": "c d"},\n {"sent0": "e f", "sent1": "g'),
        "training file cut.json line 2: not valid JSON at column 28 (Unterminated string starting at)",
    ),
    "parquet file that is not parquet": (
        _write("fake.parquet", "sent0,sent1\na b,c d\n"),
        "training file fake.parquet: not a readable parquet file (Parquet magic bytes not found in footer.",
    ),
    "truncated parquet file": (
        _parquet("cut.parquet", lambda good: good[: len(good) // 2]),
        "training file cut.parquet: not a readable parquet file (Parquet magic bytes not found in footer.",
    ),
    "save_to_disk directory without its data file": (
        _saved_dataset_without("train/data-00000-of-00001.arrow"),
        "training data saved: an incomplete save_to_disk directory (saved/train/data-00000-of-00001.arrow is missing)",
    ),
    "save_to_disk directory without its state file": (
        _saved_dataset_without("train/state.json"),
        "training data saved: an incomplete save_to_disk directory (No such file: 'saved/train/state.json')",
    ),
    "non-finite dev score": (
        _with("--data.dev_file", "dev.tsv", files={"dev.tsv": "sentence1\tsentence2\tscore\na\tb\t1\nc\td\tinf\n"}),
        "dev file dev.tsv line 3: score 'inf' is not finite",
    ),
    "dev scores all equal (Spearman undefined)": (
        _with("--data.dev_file", "dev.tsv", files={"dev.tsv": "sentence1\tsentence2\tscore\na\tb\t2\nc\td\t2.0\n"}),
        "dev file dev.tsv: all 2 scores are 2; Spearman's correlation is undefined when the gold scores do not vary",
    ),
    "a single dev pair (Spearman undefined)": (
        _with("--data.dev_file", "dev.tsv", files={"dev.tsv": "sentence1\tsentence2\tscore\na\tb\t2\n"}),
        "dev file dev.tsv: only 1 scored pair; Spearman's correlation needs at least 2",
    ),
    # Settings checked before anything is built: key, value, what is allowed.
    "non-positive temperature": (_with("--model.temp", "0"), "model.temp: must be > 0, got 0.0"),
    "negative learning rate": (_with("--model.learning_rate", "-1"), "model.learning_rate: must be > 0, got -1.0"),
    "negative warmup": (_with("--model.warmup_steps", "-5"), "model.warmup_steps: must be >= 0, got -5"),
    "masking probability above 1": (
        _with("--model.mlm_probability", "1.5"),
        "model.mlm_probability: must be in (0, 1), got 1.5",
    ),
    "Matryoshka dimensions not decreasing": (
        _with("--model.matryoshka_dims", "[16, 32]"),
        "model.matryoshka_dims: must be strictly decreasing, largest first (e.g. [768, 512, 256, 128, 64]), got "
        "[16, 32]",
    ),
    "a Matryoshka dimension beyond the hidden size": (
        _with("--model.matryoshka_dims", "[64, 32]", "--model.mlp_only_train", "false"),
        "model.matryoshka_dims: 64 is larger than the embedding of",
    ),
    "Matryoshka with an MLP in training only": (
        _with("--model.matryoshka_dims", "[32, 16]"),  # the quickstart's cls with mlp_only_train
        "model.matryoshka_dims: [32, 16] with model.mlp_only_train: true would train the prefixes of the MLP's output",
    ),
    "a non-positive Matryoshka dimension": (
        _with("--model.matryoshka_dims", "[32, 0]"),
        "model.matryoshka_dims: every dimension must be >= 1, got [32, 0]",
    ),
    "Matryoshka weights of another length": (
        _with("--model.matryoshka_dims", "[32, 16]", "--model.matryoshka_weights", "[1.0]"),
        "model.matryoshka_weights: [1.0] must hold one weight per dimension of model.matryoshka_dims [32, 16] (2)",
    ),
    "a non-positive Matryoshka weight": (
        _with("--model.matryoshka_dims", "[32, 16]", "--model.matryoshka_weights", "[1.0, 0]"),
        "model.matryoshka_weights: every weight must be a finite number > 0, got [1.0, 0.0]",
    ),
    "negative worker count": (_with("--data.num_workers", "-1"), "data.num_workers: must be 0 (load in the training"),
    "zero validation batch size": (_with("--data.eval_batch_size", "0"), "data.eval_batch_size: must be at least 1"),
    "zero accumulation": (
        _with("--trainer.accumulate_grad_batches", "0"),
        "trainer.accumulate_grad_batches: 0 is not allowed; use an integer >= 1",
    ),
    "zero logging interval": (_with("--trainer.log_every_n_steps", "0"), "trainer.log_every_n_steps: 0 is not allowed"),
    "zero validation interval": (
        _with("--trainer.val_check_interval", "0"),
        "trainer.val_check_interval: 0 is not allowed; use a number of steps >= 1 (or, with "
        "trainer.check_val_every_n_epoch set, a fraction of an epoch in (0, 1])",
    ),
    "a fraction of an epoch where steps are counted across epochs": (
        _with("--trainer.val_check_interval", "0.5", "--trainer.check_val_every_n_epoch", "null"),
        "trainer.val_check_interval: 0.5 is a fraction of an epoch, which Lightning takes only with "
        "trainer.check_val_every_n_epoch set; give a number of steps",
    ),
    "a validation interval the run never reaches": (
        _with("--trainer.val_check_interval", "3"),
        "trainer.val_check_interval: 3 is more than trainer.max_steps 2: the run would never validate on "
        "data.dev_file, and would export its last checkpoint unevaluated",
    ),
    "Lightning's overfit_batches, which replaces the training order": (
        _with("--trainer.overfit_batches", "2"),
        "trainer.overfit_batches: 2 is not allowed; use 0: cse fit's training order is seeded and resumable",
    ),
    "a fraction of an epoch the run never reaches": (
        _with("--trainer.val_check_interval", "0.5", "--trainer.check_val_every_n_epoch", "1"),
        "trainer.val_check_interval: 0.5 with trainer.check_val_every_n_epoch 1 first validates after step 9 (18 "
        "training batches per epoch), more than trainer.max_steps 2: the run would never validate on data.dev_file",
    ),
    "an epoch interval the run never reaches": (
        _with("--trainer.val_check_interval", "2", "--trainer.check_val_every_n_epoch", "2"),
        "trainer.val_check_interval: 2 with trainer.check_val_every_n_epoch 2 first validates after step 20 (18 ",
    ),
    "checkpointing turned off": (
        _with("--trainer.enable_checkpointing", "false"),
        "trainer.enable_checkpointing: False is not allowed; use true: cse keeps the best checkpoint (checkpoint.*) "
        "and last.ckpt",
    ),
    "early stopping on a metric that is not logged": (
        _with("--trainer.callbacks+=EarlyStopping", "--trainer.callbacks.monitor=val/spearman"),
        "trainer.callbacks: EarlyStopping monitors 'val/spearman', which cse fit does not log; use one of "
        "val/stsb_spearman, val/stsb_pearson, train/loss",
    ),
    "early stopping on validation without a dev set": (
        _with(
            "--data.dev_file",
            "null",
            "--trainer.callbacks+=EarlyStopping",
            "--trainer.callbacks.monitor=val/stsb_spearman",
        ),
        "trainer.callbacks: EarlyStopping monitors val/stsb_spearman, which is logged only with data.dev_file set",
    ),
    "a checkpoint callback of the user's on a metric that is not logged": (
        _with("--trainer.callbacks+=ModelCheckpoint", "--trainer.callbacks.monitor=val/spearman"),
        "trainer.callbacks: ModelCheckpoint monitors 'val/spearman', which cse fit does not log; use one of "
        "val/stsb_spearman, val/stsb_pearson, train/loss",
    ),
    "a learning-rate monitor without a logger": (
        _with(
            "--trainer.logger",
            "false",
            "--trainer.default_root_dir",
            "runs",
            "--trainer.callbacks+=LearningRateMonitor",
        ),
        "trainer.callbacks: LearningRateMonitor writes to a logger, and trainer.logger is false",
    ),
    "stochastic weight averaging, whose weights the run would drop": (
        _with(
            "--trainer.callbacks+=StochasticWeightAveraging",
            "--trainer.callbacks.swa_lrs=1.0e-5",
            "--trainer.callbacks.swa_epoch_start=1",
        ),
        "trainer.callbacks: StochasticWeightAveraging's averaged weights replace the model only when training ends",
    ),
    "negative max_steps": (_with("--trainer.max_steps", "-5"), "trainer.max_steps: -5 is not allowed"),
    "zero epochs": (_with("--trainer.max_epochs", "0"), "trainer.max_epochs: 0 is not allowed"),
    "no end at all": (
        _with("--trainer.max_steps", "-1", "--trainer.max_epochs", "-1"),
        "trainer.max_epochs: -1 with trainer.max_steps -1 never ends",
    ),
    "checkpoint monitor that names no metric": (
        _with("--checkpoint.monitor", "val/spearman"),
        "checkpoint.monitor: 'val/spearman' is not allowed; use null or one of val/stsb_spearman, val/stsb_pearson, "
        "train/loss",
    ),
    "checkpoint keeping the highest loss": (
        _with("--checkpoint.monitor", "train/loss"),
        "checkpoint.mode: 'max' would keep the checkpoint with the highest train/loss; use min",
    ),
    "guard that can never stop": (
        _with("--non_finite_guard.max_consecutive_steps", "0"),
        "non_finite_guard.max_consecutive_steps: 0 is not allowed; use an integer >= 1",
    ),
    "value of the wrong type": (
        _with("--trainer.max_steps", "many"),
        "Parser key \"trainer.max_steps\": Expected a <class 'int'>. Got value: many (cse fit --help lists what",
    ),
    # Settings that make training a no-op.
    "a batch of one example (InfoNCE has no negatives)": (
        _with("--data.batch_size", "1"),
        "data.batch_size: 1 example per batch gives InfoNCE no in-batch negatives",
    ),
    "a truncation that leaves no words": (
        _with("--data.max_seq_length", "2"),
        "data.max_seq_length: 2 tokens leave no room for words after the tokenizer's 2 special tokens; use at least 3",
    ),
    "training text with classic Mac line ends (was one sentence)": (
        _with("--data.train_file", "mac.txt", files={"mac.txt": "".join(f"a man is playing {i}\r" for i in range(40))}),
        "corpus mac.txt: its lines end in a lone carriage return (\\r, classic Mac OS)",
    ),
    # Config files: syntax errors and keys given twice, with their line.
    "config file with a YAML syntax error": (
        _config_file("broken.yaml", "data:\n  batch_size: [16\n"),
        "--config broken.yaml line 3, column 1: while parsing a flow sequence expected ',' or ']'",
    ),
    "config file with no settings": (
        _config_file("empty.yaml", "# settings to come\n"),
        "--config empty.yaml: holds no settings (an empty file, or only comments)",
    ),
    "config section given a number (was a traceback)": (
        _config_file("section.yaml", "seed_everything: 1\ntrainer: 3\n"),
        "--config section.yaml line 2: trainer: expected a mapping of its settings (indented `key: value` lines below "
        "`trainer:`), got 3",
    ),
    "config section given a list (was dropped: 'data.train_file: not set')": (
        _config_file("section.yaml", "data: [a.txt, b.txt]\n"),
        "--config section.yaml line 1: data: expected a mapping of its settings",
    ),
    "config section left empty": (
        _config_file("section.yaml", "model:\ndata:\n  batch_size: 8\n"),
        "--config section.yaml line 1: model: expected a mapping of its settings (indented `key: value` lines below "
        "`model:`), got nothing",
    ),
    "config file with a key given twice": (
        _config_file("twice.yaml", "trainer:\n  max_steps: 2\n  max_steps: 3\n"),
        "--config twice.yaml line 3, column 3: key 'max_steps' is given twice (first on line 2)",
    ),
}


def _error_line(result: tuple[int | str | None, str, str], directory: Path) -> str:
    """Check a `run_cse` result: exit status 2, a single error line, no traceback, and no output under `directory`."""
    code, _, err = result
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1, err
    assert "Traceback" not in err
    assert not list(directory.rglob("*.ckpt")), "no checkpoint may be written"
    assert not list(directory.rglob("*best_model*")), "no export, not even a staging directory, may be left"
    return errors[0]


def _files(directory: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in directory.rglob("*") if path.is_file()}


@pytest.mark.parametrize("case", CASES)
def test_fit_bad_input(case, shrunk_recipe_args, run_cse, tmp_path, monkeypatch):
    if case == "a GPU asked for where torch sees none" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    monkeypatch.chdir(tmp_path)
    setup, expected = CASES[case]
    args = shrunk_recipe_args("quickstart", *setup(tmp_path), max_steps=2)
    before = _files(tmp_path)
    line = _error_line(run_cse(args), tmp_path)
    print(f"{case} | {line}")
    assert expected in line
    after = _files(tmp_path)
    assert {path: after.get(path) for path in before} == before, "a file that was there has changed"
    assert not (tmp_path / "runs").exists(), "a refused run leaves no run folder (nor its config.yaml) behind"


def test_tokenizer_larger_than_the_embedding_matrix(tiny_model_dir, shrunk_recipe_args, run_cse, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    overrides = _mismatched_tokenizer(tiny_model_dir)(tmp_path)
    line = _error_line(run_cse(shrunk_recipe_args("quickstart", *overrides, max_steps=2)), tmp_path)
    print(f"tokenizer/model mismatch | {line}")
    assert "model 'model': the tokenizer has 88 tokens but the model's embedding matrix has 86 rows" in line


def test_model_directory_without_tokenizer_files(tiny_model_dir, shrunk_recipe_args, run_cse, tmp_path, monkeypatch):
    """transformers builds an empty tokenizer there: every word was [UNK], and the run trained and exported."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model").mkdir()
    for path in Path(tiny_model_dir).iterdir():
        if path.name == "config.json" or path.suffix in (".safetensors", ".bin"):
            shutil.copy(path, tmp_path / "model")
    overrides = ["--model.model_name_or_path", "model"]
    line = _error_line(run_cse(shrunk_recipe_args("quickstart", *overrides, max_steps=2)), tmp_path)
    print(f"model without tokenizer files | {line}")
    special = len(AutoTokenizer.from_pretrained(tiny_model_dir).all_special_tokens)
    assert f"model 'model': its tokenizer has only its {special} special tokens (no tokenizer files" in line


@pytest.fixture(scope="module")
def checkpoint(shrunk_recipe_args, tmp_path_factory) -> Path:
    """last.ckpt of a one-step run."""
    directory = tmp_path_factory.mktemp("one_step")
    args = shrunk_recipe_args(
        "quickstart",
        "--trainer.logger.init_args.save_dir",
        str(directory / "runs"),
        "--data.dev_file",
        "null",
        cache_dir=directory / "cache",
        max_steps=1,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    main(args)
    torch.set_num_threads(threads)
    return next(directory.rglob("last.ckpt"))


def test_disk_full_during_export(checkpoint, run_cse, tmp_path, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export, "write_sentence_transformers_files", disk_full)  # after weights and tokenizer
    out = tmp_path / "exported"
    line = _error_line(run_cse(["export", str(checkpoint), str(out)]), tmp_path)
    print(f"disk full during export | {line}")
    assert line == f"error: export directory {out}: write failed (No space left on device); nothing was replaced"
    assert list(tmp_path.iterdir()) == [], "the staging directory is removed"


def test_a_byte_order_mark_trains_what_the_file_without_one_trains(shrunk_recipe_args, run_cse, tiny_data, tmp_path):
    """A spreadsheet's UTF-8 csv (BOM, Windows line ends) once trained triplets with the scores as hard negatives."""
    pairs = [line.split("\t") for line in Path(tiny_data.dev_file).read_text().splitlines()[1:]]
    for name, start, end in (("plain", "", "\n"), ("excel", "\ufeff", "\r\n")):
        with (tmp_path / f"{name}.csv").open("w", encoding="utf-8", newline="") as handle:
            handle.write(start)
            csv.writer(handle, lineterminator=end).writerows([("sentence1", "sentence2", "score"), *pairs])
    assert (tmp_path / "excel.csv").read_bytes().startswith(b"\xef\xbb\xbfsentence1,sentence2,score\r\n")
    trained = {}
    for name in ("plain", "excel"):
        args = shrunk_recipe_args(
            "quickstart",
            "--data.train_file",
            str(tmp_path / f"{name}.csv"),
            "--data.dev_file",
            "null",
            "--data.batch_size",
            "8",
            "--trainer.logger.init_args.save_dir",
            str(tmp_path / name),
            cache_dir=tmp_path / "cache",
            max_steps=2,
        )
        code, out, err = run_cse(args)
        assert code == 0, err
        exported = Path(out.strip().splitlines()[-1].split("best model: ")[-1])
        card = (exported / "README.md").read_text()
        assert f"`{name}.csv`, {len(pairs)} scored sentence pairs" in card, card
        trained[name] = load_file(exported / "model.safetensors")
    assert trained["plain"].keys() == trained["excel"].keys()
    for key, tensor in trained["plain"].items():  # the same examples in the same order: the same weights
        assert torch.equal(tensor, trained["excel"][key]), key
