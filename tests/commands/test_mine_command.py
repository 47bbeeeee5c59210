"""`cse mine` through the entry point: it writes the miner's triplets, in every format, and they train with cse fit."""

import csv
import json
import logging
import os
import warnings
from pathlib import Path

import pytest
import torch

from cse import load_model
from cse.data.training_data import load_examples
from cse.inference.hard_negatives import HardNegativeMiner, MiningSettings

pytestmark = pytest.mark.usefixtures("one_torch_thread")

COLUMNS = '{"sent0": "sentence1", "sent1": "sentence2"}'  # the generated dev set's pairs, its score not read


@pytest.fixture
def files(tiny_data, tmp_path, monkeypatch):
    """The working directory: `pairs.tsv` (the generated dev set: sentence1, sentence2, score) and `corpus.txt`."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pairs.tsv").write_text(Path(tiny_data.dev_file).read_text())
    (tmp_path / "corpus.txt").write_text(Path(tiny_data.train_file).read_text())
    return tmp_path


def _pairs(directory: Path) -> tuple[list[str], list[str]]:
    rows = list(csv.DictReader((directory / "pairs.tsv").open(newline=""), delimiter="\t"))
    return [row["sentence1"] for row in rows], [row["sentence2"] for row in rows]


def _read(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().split("\n")[:-1]]  # not splitlines(): U+2028 is text
    return list(
        csv.DictReader(path.open(newline="", encoding="utf-8"), delimiter="\t" if path.suffix == ".tsv" else ",")
    )


def _mine(run_cse, model, *args: str) -> str:
    code, out, err = run_cse(["mine", str(model), *args])
    assert code == 0, err
    return out


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_the_triplets_are_the_miners_one_row_per_negative(tiny_model_dir, files, run_cse, suffix):
    options = ["--range-min", "1", "--range-max", "40", "--num-negatives", "3", "--margin", "0.0"]
    out = _mine(
        run_cse,
        tiny_model_dir,
        "pairs.tsv",
        f"out{suffix}",
        "--corpus",
        "corpus.txt",
        "--columns",
        COLUMNS,
        "--pooler",
        "avg",
        "--output-scores",
        *options,
    )
    anchors, positives = _pairs(files)
    corpus = (files / "corpus.txt").read_text().splitlines()
    settings = MiningSettings(range_min=1, range_max=40, num_negatives=3, margin=0.0)
    miner = HardNegativeMiner(load_model(tiny_model_dir, "avg"), corpus + positives, settings)  # the positives too
    mined = list(miner.mine(anchors, positives))
    expected = [(p.anchor, p.positive, text) for p in mined for text, _ in p.negatives]
    rows = _read(files / f"out{suffix}")
    assert [(row["sent0"], row["sent1"], row["hard_neg"]) for row in rows] == expected
    scores = [(p.positive_score, score) for p in mined for _, score in p.negatives]
    written = [float(row[key]) for row in rows for key in ("positive_score", "negative_score")]
    assert written == pytest.approx([score for pair in scores for score in pair], abs=1e-5)
    assert all(score <= positive + 1e-6 for positive, score in scores)  # --margin 0
    counts = miner.counts
    assert 0 < counts.pairs_with_negatives < counts.pairs == 60  # some pairs keep no candidate: left out
    summary = out.strip()
    assert "\n" not in summary and summary.endswith(f"; wrote out{suffix}")
    assert summary.startswith(
        f"mined {counts.negatives:,} hard negatives for {counts.pairs_with_negatives} of 60 pairs "
        f"({60 - counts.pairs_with_negatives} without one) from {len(miner.corpus)} corpus sentences in "
    )
    assert f"mean cosine: positives {counts.positive_score_sum / 60:.4f}, negatives " in summary
    assert f"candidates refused: --margin {counts.refused['margin']:,};" in summary and counts.refused["margin"] > 0
    assert sorted(path.name for path in files.iterdir()) == ["corpus.txt", f"out{suffix}", "pairs.tsv"]  # no leftovers


def test_the_default_corpus_is_the_positives_and_chunks_change_nothing(tiny_model_dir, files, run_cse):
    args = ["pairs.tsv", "--columns", COLUMNS, "--pooler", "avg", "--batch-size", "1", "--num-negatives", "2"]
    _mine(run_cse, tiny_model_dir, *args, "whole.csv")
    out = _mine(run_cse, tiny_model_dir, *args, "chunked.csv", "--chunk-size", "7")
    assert (files / "whole.csv").read_bytes() == (files / "chunked.csv").read_bytes()
    assert "from 60 corpus sentences" in out
    anchors, positives = _pairs(files)
    rows = _read(files / "whole.csv")
    assert len(rows) == 120 and {row["hard_neg"] for row in rows} <= set(positives)
    own = dict(zip(anchors, positives, strict=True))
    assert all(row["hard_neg"] != own[row["sent0"]] for row in rows)


def test_a_checkpoint_and_its_export_mine_the_same_triplets_which_train(fitted_run, files, run_cse, shrunk_recipe_args):
    checkpoint = next((fitted_run / "checkpoints").glob("best-step=*.ckpt"))
    args = ["pairs.tsv", "--corpus", "corpus.txt", "--columns", COLUMNS, "--num-negatives", "2", "--margin", "0.0"]
    _mine(run_cse, checkpoint, *args, "from-checkpoint.csv")
    _mine(run_cse, fitted_run / "best_model", *args, "triplets.csv")
    assert _read(files / "from-checkpoint.csv") == _read(files / "triplets.csv")
    assert load_examples("triplets.csv").mapping.mode == "triplets"
    fit = shrunk_recipe_args(
        "sup-simcse-bert-base",
        "--data.train_file",
        "triplets.csv",
        "--model.hard_negative_weight",
        "1.0",  # warned about unless the data has hard negatives
        batch_size=8,
        max_steps=2,
        num_sanity_val_steps=0,
    )
    code, out, err = run_cse(fit)
    assert code == 0, err
    assert "hard_negative_weight" not in err
    assert "trained 2 steps" in out.splitlines()[-1]
    run_dir = Path(out.strip().splitlines()[-1].split("best model: ")[-1]).parent
    assert "triplets.csv" in (run_dir / "config.yaml").read_text()


def test_jsonl_triplets_train(tiny_model_dir, files, run_cse, shrunk_recipe_args):
    _mine(run_cse, tiny_model_dir, "pairs.tsv", "triplets.jsonl", "--columns", COLUMNS, "--pooler", "avg")
    fit = shrunk_recipe_args(
        "sup-simcse-bert-base", "--data.train_file", "triplets.jsonl", batch_size=8, max_steps=2, num_sanity_val_steps=0
    )
    code, out, err = run_cse(fit)
    assert code == 0, err
    assert "trained 2 steps" in out.splitlines()[-1]
    assert load_examples("triplets.jsonl").mapping.mode == "triplets"


def test_texts_with_quotes_separators_and_line_breaks_survive(tiny_model_dir, files, run_cse):
    texts = ['a "quoted" man, in the park', "a man\tis\rplaying", "the dog\u2028is in the park", "a girl; a boy"]
    (files / "pairs.jsonl").write_text(
        "".join(json.dumps({"sent0": t, "sent1": t.upper() + "!"}) + "\n" for t in texts)
    )
    for suffix in (".csv", ".tsv", ".jsonl"):
        _mine(run_cse, tiny_model_dir, "pairs.jsonl", f"out{suffix}", "--pooler", "avg")
        assert {row["sent0"] for row in _read(files / f"out{suffix}")} == set(texts)
    (files / "broken.jsonl").write_text(
        json.dumps({"sent0": "a\nb", "sent1": "c"}) + "\n" + json.dumps({"sent0": "d", "sent1": "e"}) + "\n"
    )
    code, out, err = run_cse(["mine", str(tiny_model_dir), "broken.jsonl", "out.csv", "--pooler", "avg"])
    assert code == 2 and "pair 1: a text holds a line break" in err and "write the triplets as .jsonl" in err
    _mine(run_cse, tiny_model_dir, "broken.jsonl", "broken-out.jsonl", "--pooler", "avg")
    assert _read(files / "broken-out.jsonl")[0]["sent0"] == "a\nb"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.csv", "out.csv"], "missing.csv: no such file"),
        (["pairs.tsv", "out.txt"], "output out.txt: must end in .csv, .tsv, .jsonl"),
        (["pairs.tsv", "nowhere/out.csv"], "directory nowhere does not exist"),
        (["pairs.tsv", "pairs.tsv"], "output pairs.tsv: is an input of this run"),
        (["pairs.tsv", "out.csv", "--range-min", "-1"], "--range-min: must be at least 0, got -1"),
        (["pairs.tsv", "out.csv", "--range-min", "5", "--range-max", "5"], "--range-max: must be above --range-min"),
        (["pairs.tsv", "out.csv", "--num-negatives", "4", "--range-max", "3"], "4 negatives cannot come from the 3"),
        (["pairs.tsv", "out.csv", "--margin", "nan"], "--margin: must be a number from 0 to 2, got nan"),
        (["pairs.tsv", "out.csv", "--margin", "-0.1"], "--margin: must be a number from 0 to 2, got -0.1"),
        (["pairs.tsv", "out.csv", "--relative-margin", "5"], "--relative-margin: must be a number from 0 to 1"),
        (["pairs.tsv", "out.csv", "--min-score", "0.9", "--max-score", "0.5"], "--min-score: must be below"),
        (["pairs.tsv", "out.csv", "--chunk-size", "0"], "--chunk-size: must be at least 1, got 0"),
        (["pairs.tsv", "out.csv", "--batch-size", "0"], "--batch-size: must be at least 1, got 0"),
        (["pairs.tsv", "out.csv", "--columns", "{sent0: [1]}"], "--columns: expected a mapping such as"),
        (["pairs.tsv", "out.csv", "--columns", '{"sent0": "q"}'], "--columns: name exactly sent0 (anchor) and sent1"),
        (["pairs.tsv", "out.csv", "--columns", '{"sent0": "q", "sent1": "a"}'], "--columns.sent0: no column 'q'"),
        (["pairs.tsv", "out.csv"], "scored pairs (score column 'score')"),
        (["corpus.txt", "out.csv"], "one text column ('text'); mining needs (anchor, positive) pairs"),
        (["p.csv", "out.csv", "--corpus", "corpus.tsv"], "corpus corpus.tsv: must be a .txt file"),
        (["p.csv", "out.csv", "--corpus", "blank.txt"], "corpus blank.txt: no sentences"),
        (["p.csv", "out.csv", "--corpus", "none.txt"], "corpus none.txt: no such file"),
        (["p.csv", "out.csv", "--min-score", "0.9999999"], "no pair got a hard negative, so nothing was written"),
    ],
)
def test_bad_input_is_one_error_line_and_writes_nothing(tiny_model_dir, files, run_cse, args, message):
    (files / "p.csv").write_text("sent0,sent1\na man is playing,a man plays\nthe dog,a dog\nthe girl,a girl\n")
    (files / "corpus.tsv").write_text("a\tb\n")
    (files / "blank.txt").write_text("\n  \n")
    (files / "out.csv").write_text("an earlier file\n")
    code, out, err = run_cse(["mine", str(tiny_model_dir), *args, "--pooler", "avg"])
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err and out == ""
    assert (files / "out.csv").read_text() == "an earlier file\n"  # left as it was
    assert not [path.name for path in files.iterdir() if path.name.startswith(".")]  # no temporary file left


def test_truncate_dim_mines_with_the_first_dimensions(tiny_model_dir, files, run_cse):
    _mine(
        run_cse,
        tiny_model_dir,
        "pairs.tsv",
        "out.csv",
        "--columns",
        COLUMNS,
        "--pooler",
        "avg",
        "--truncate-dim",
        "8",
        "--range-min",
        "0",
        "--range-max",
        "1",
        "--output-scores",
        "--max-score",
        "1",
    )
    rows = _read(files / "out.csv")
    texts = [text for row in rows for text in (row["sent0"], row["sent1"], row["hard_neg"])]
    full = load_model(tiny_model_dir, "avg").encode(texts, convert_to="torch")  # (3R, 32), not truncated
    first = torch.nn.functional.normalize(full[:, :8], dim=1).view(len(rows), 3, 8)  # Matryoshka: a prefix, unit
    expected = torch.stack([(first[:, 0] * first[:, view]).sum(1) for view in (1, 2)], dim=1)
    written = torch.tensor([[float(row["positive_score"]), float(row["negative_score"])] for row in rows])
    torch.testing.assert_close(written, expected, atol=1e-5, rtol=0)


def test_skipped_bad_rows_are_one_plain_warning_line(tiny_model_dir, files, run_cse, caplog):
    """As cse's other warnings (`warning: ...`, on rank 0), not a Python `UserWarning` with cse's source line."""
    (files / "p.csv").write_text("sent0,sent1\na man is playing,a man plays\nthe dog,\nthe girl,a girl\nthe boy,a b\n")
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO):
        warnings.simplefilter("always")
        _mine(run_cse, tiny_model_dir, "p.csv", "out.csv", "--pooler", "avg", "--on-bad-rows", "skip")
    said = [record.getMessage() for record in caplog.records if "bad rows" in record.getMessage()]
    assert said == ["warning: skipped 1 bad rows of p.csv (first: line 3: column 'sent1' is empty)"]
    assert [str(warning.message) for warning in caught if "bad rows" in str(warning.message)] == []
    assert {row["sent0"] for row in _read(files / "out.csv")} == {"a man is playing", "the girl", "the boy"}


def test_an_output_link_is_written_through_and_kept(tiny_model_dir, files, run_cse):
    (files / "p.csv").write_text("sent0,sent1\na man is playing,a man plays\nthe dog,a dog\nthe girl,a girl\n")
    (files / "store").mkdir()
    (files / "store" / "triplets.csv").write_text("an earlier file\n")
    (files / "out.csv").symlink_to("store/triplets.csv")
    _mine(run_cse, tiny_model_dir, "p.csv", "out.csv", "--pooler", "avg")
    _mine(run_cse, tiny_model_dir, "p.csv", "plain.csv", "--pooler", "avg")
    assert (files / "out.csv").is_symlink() and os.readlink(files / "out.csv") == "store/triplets.csv"
    assert (files / "store" / "triplets.csv").read_text() == (files / "plain.csv").read_text()
    assert sorted(path.name for path in (files / "store").iterdir()) == ["triplets.csv"]  # no temporary file left


def test_hard_negatives_of_the_input_that_the_output_replaces_are_one_warning_line(
    tiny_model_dir, files, run_cse, caplog
):
    (files / "t.csv").write_text("sent0,sent1,hard_neg\na man is playing,a man plays,a cat\nthe girl,a girl,the boy\n")
    with caplog.at_level(logging.INFO):
        _mine(run_cse, tiny_model_dir, "t.csv", "out.csv", "--pooler", "avg")
    said = [record.getMessage() for record in caplog.records if record.getMessage().startswith("warning:")]
    assert said == [
        "warning: pairs t.csv: its hard negatives (column 'hard_neg') are not kept; the output holds the mined ones "
        "instead"
    ]
    assert {row["hard_neg"] for row in _read(files / "out.csv")} <= {"a man plays", "a girl"}  # the mined ones
