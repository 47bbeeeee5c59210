"""`cse label` through the entry point: every pair scored once by the cross-encoder, the scores a direct
`CrossEncoder.predict` gives, BM25 pairs as a brute force finds them, and the file trains with cse fit (CoSENT)."""

import csv
import json
import logging
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from sentence_transformers import CrossEncoder
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from cse.data.text_identity import normalize_text
from cse.data.training_data import load_examples
from cse.export.directory import write_model_directory
from cse.inference.bm25 import OkapiBM25
from cse.models.encoder import SentenceEncoder

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cross_encoder_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """A random 2-layer BERT with a one-score head (num_labels=1) and the tiny tokenizer: a tiny STS cross-encoder."""
    directory = tmp_path_factory.mktemp("tiny-cross-encoder")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    config = BertConfig.from_pretrained(tiny_model_dir, num_labels=1)
    torch.manual_seed(1)
    BertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture
def files(tiny_data, tmp_path, monkeypatch) -> Path:
    """The working directory: `pairs.tsv` (the generated dev set: sentence1, sentence2, score), `corpus.txt`."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pairs.tsv").write_text(Path(tiny_data.dev_file).read_text())
    (tmp_path / "corpus.txt").write_text("\n".join(Path(tiny_data.train_file).read_text().splitlines()[:40]) + "\n")
    return tmp_path


@pytest.fixture
def predictions(monkeypatch) -> list[list[tuple[str, str]]]:
    """The pairs of every `CrossEncoder.predict` call, which still runs."""
    calls = []
    predict = CrossEncoder.predict

    def spy(self, inputs, *args, **kwargs):
        calls.append([tuple(pair) for pair in inputs])
        return predict(self, inputs, *args, **kwargs)

    monkeypatch.setattr(CrossEncoder, "predict", spy)
    return calls


def _read(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().split("\n")[:-1]]
    return list(csv.DictReader(path.open(newline=""), delimiter="\t" if path.suffix == ".tsv" else ","))


def _label(run_cse, cross_encoder_dir, *args: str) -> str:
    code, out, err = run_cse(["label", *args, "--cross-encoder", str(cross_encoder_dir), "--batch-size", "7"])
    assert code == 0, err
    return out


def _naive_unique(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    kept = []
    for first, second in pairs:
        key = {normalize_text(first), normalize_text(second)}
        if len(key) == 2 and key not in [{normalize_text(a), normalize_text(b)} for a, b in kept]:
            kept.append((first, second))
    return kept


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_every_pair_is_scored_once_as_a_direct_predict_scores_it(
    cross_encoder_dir, files, run_cse, predictions, suffix
):
    rows = list(csv.DictReader((files / "pairs.tsv").open(newline=""), delimiter="\t"))
    given = [(row["sentence1"], row["sentence2"]) for row in rows]
    given += [(given[0][1], given[0][0]), (given[1][0], given[1][0].upper()), given[2]]  # a reverse, a self, a repeat
    (files / "pairs.jsonl").write_text("".join(json.dumps({"sent0": a, "sent1": b}) + "\n" for a, b in given))
    out = _label(run_cse, cross_encoder_dir, f"out{suffix}", "--pairs", "pairs.jsonl")
    expected = _naive_unique(given)
    assert len(expected) == len(given) - 3 - sum(a == b for a, b in given[:-3])
    assert predictions == [expected]  # one call, every pair once
    direct = CrossEncoder(str(cross_encoder_dir)).predict(expected, batch_size=1)  # (P,)
    written = _read(files / f"out{suffix}")
    assert [(row["sent0"], row["sent1"]) for row in written] == expected
    assert [float(row["score"]) for row in written] == pytest.approx(direct.tolist(), abs=1e-6)
    assert out.strip().startswith(
        f"labelled {len(expected)} pairs (3 repeated or self pairs left out) from pairs.jsonl"
    )
    assert out.strip().endswith(f"wrote out{suffix}") and "\n" not in out.strip()
    assert sorted(path.name for path in files.iterdir()) == sorted(
        ["corpus.txt", "pairs.jsonl", "pairs.tsv", f"out{suffix}"]
    )


def test_bm25_pairs_are_a_brute_force_top_k(cross_encoder_dir, files, run_cse, predictions):
    _label(
        run_cse, cross_encoder_dir, "out.csv", "--sentences", "corpus.txt", "--sampling", "bm25", "--per-sentence", "2"
    )
    sentences = list(dict.fromkeys((files / "corpus.txt").read_text().splitlines()))
    index = OkapiBM25(sentences)
    candidates = []
    for i, sentence in enumerate(sentences):
        scores = index.scores([sentence])[0]
        ranked = sorted((j for j in range(len(sentences)) if j != i and scores[j] > 0), key=lambda j: (-scores[j], j))
        candidates += [(sentence, sentences[j]) for j in ranked[:2]]
    expected = _naive_unique(candidates)
    assert predictions == [expected]
    assert [(row["sent0"], row["sent1"]) for row in _read(files / "out.csv")] == expected


def test_random_sampling_is_seeded_and_never_pairs_a_sentence_with_itself(cross_encoder_dir, files, run_cse):
    args = ["--sentences", "corpus.txt", "--sampling", "random", "--per-sentence", "3"]
    _label(run_cse, cross_encoder_dir, "a.csv", *args, "--seed", "5")
    _label(run_cse, cross_encoder_dir, "b.csv", *args, "--seed", "5")
    _label(run_cse, cross_encoder_dir, "c.csv", *args, "--seed", "6")
    a, c = _read(files / "a.csv"), _read(files / "c.csv")
    assert (files / "a.csv").read_bytes() == (files / "b.csv").read_bytes() and a != c
    pairs = [(row["sent0"], row["sent1"]) for row in a]
    assert all(normalize_text(x) != normalize_text(y) for x, y in pairs)
    assert max(Counter(frozenset(pair) for pair in pairs).values()) == 1
    assert len(pairs) > 40  # about 3 per sentence, less the reverses drawn twice


def test_the_silver_pairs_train_with_cosent(cross_encoder_dir, files, run_cse, shrunk_recipe_args):
    _label(
        run_cse,
        cross_encoder_dir,
        "silver.csv",
        "--pairs",
        "pairs.tsv",
        "--columns",
        "{sent0: sentence1, sent1: sentence2}",
    )
    assert load_examples("silver.csv").mapping.mode == "scored"
    fit = shrunk_recipe_args("quickstart", "--data.train_file", "silver.csv", batch_size=8, max_steps=2)
    code, out, err = run_cse(fit)
    assert code == 0, err
    assert "trained 2 steps" in out.splitlines()[-1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["out.csv", "--pairs", "missing.csv"], "missing.csv: no such file"),
        (["out.txt", "--pairs", "p.csv"], "output out.txt: must end in .csv, .tsv, .jsonl"),
        (["nowhere/out.csv", "--pairs", "p.csv"], "directory nowhere does not exist"),
        (["p.csv", "--pairs", "p.csv"], "output p.csv: is an input of this run"),
        (["corpus.csv", "--sentences", "corpus.csv", "--sampling", "bm25"], "is an input of this run"),
        (
            ["out.csv", "--sentences", "corpus.txt", "--sampling", "bm25", "--per-sentence", "0"],
            "--per-sentence: must be at least 1, got 0",
        ),
        (["out.csv", "--sentences", "corpus.txt"], "--sentences: needs --sampling (random, bm25, embedding)"),
        (
            ["out.csv", "--sentences", "corpus.txt", "--sampling", "embedding"],
            "--model: the bi-encoder of --sampling embedding",
        ),
        (["out.csv", "--pairs", "p.csv", "--sampling", "bm25"], "--sampling: only with --sentences"),
        (["out.csv", "--sentences", "corpus.csv", "--sampling", "bm25"], "corpus corpus.csv: must be a .txt file"),
        (["out.csv", "--sentences", "one.txt", "--sampling", "random"], "one.txt: nothing to label"),
        (["out.csv", "--sentences", "apart.txt", "--sampling", "bm25"], "apart.txt: nothing to label"),
        (["out.csv", "--pairs", "self.csv"], "self.csv: nothing to label"),
        (["out.csv", "--pairs", "corpus.txt"], "one text column ('text')"),
        (["out.csv", "--pairs", "breaks.jsonl"], "a text holds a line break"),
        (["out.csv", "--pairs", "p.csv", "--batch-size", "0"], "--batch-size: must be at least 1, got 0"),
    ],
)
def test_bad_input_is_one_error_line_and_writes_nothing(cross_encoder_dir, files, run_cse, args, message):
    (files / "p.csv").write_text("sent0,sent1\na man is playing,a man plays\nthe dog,a dog\n")
    (files / "self.csv").write_text("sent0,sent1\na man,A  man\nthe dog,the dog\n")
    (files / "corpus.csv").write_text("text\na\n")
    (files / "one.txt").write_text("a man\n\nA man\n")
    (files / "apart.txt").write_text("a man\nthe dog\n")
    (files / "breaks.jsonl").write_text(json.dumps({"sent0": "a\nb", "sent1": "c"}) + "\n")
    (files / "out.csv").write_text("an earlier file\n")
    code, out, err = run_cse(["label", *args, "--cross-encoder", str(cross_encoder_dir)])
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err and out == ""
    assert (files / "out.csv").read_text() == "an earlier file\n"
    assert not [path.name for path in files.iterdir() if path.name.startswith(".")]


def test_a_cross_encoder_that_is_not_one_is_one_error_line(tiny_model_dir, files, run_cse):
    code, _, err = run_cse(["label", "out.csv", "--pairs", "pairs.tsv", "--cross-encoder", "./nowhere"])
    assert code == 2 and "error: --cross-encoder './nowhere': no such directory" in err


def _no_trained_cross_encoder(kind: str, directory: Path, cross_encoder_dir: Path, tiny_model_dir: Path) -> Path:
    """`bert`: the tiny BertModel, no classification head; `bi-encoder`: its cse export, a sentence-transformers
    bi-encoder; `labels`: the cross-encoder with 3 labels in config.json, 1 in its weights; `truncated`: its
    model.safetensors cut short; `pickled`: its weights as pytorch_model.bin only."""
    if kind == "bert":
        return tiny_model_dir
    if kind == "bi-encoder":
        encoder = SentenceEncoder.from_pretrained(str(tiny_model_dir), "avg").eval()
        return write_model_directory(encoder, AutoTokenizer.from_pretrained(tiny_model_dir), directory / kind)
    model = shutil.copytree(cross_encoder_dir, directory / kind)
    weights = model / "model.safetensors"
    if kind == "labels":
        config = json.loads((model / "config.json").read_text())
        config["id2label"] = {str(index): f"LABEL_{index}" for index in range(3)}
        config["label2id"] = {f"LABEL_{index}": index for index in range(3)}
        (model / "config.json").write_text(json.dumps(config))
    elif kind == "truncated":
        weights.write_bytes(weights.read_bytes()[:5])
    else:
        torch.save(load_file(weights), model / "pytorch_model.bin")
        weights.unlink()
    return model


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("bert", "its weights have no classification head (classifier.weight, classifier.bias missing)"),
        ("bi-encoder", "its weights have no classification head (classifier.weight, classifier.bias missing)"),
        ("labels", "cannot be loaded (RuntimeError: You set `ignore_mismatched_sizes` to `False`"),
        ("truncated", "model.safetensors is damaged or truncated"),
        ("pickled", "no .safetensors weights (pytorch_model.bin is pickled"),
    ],
)
def test_a_model_that_is_no_trained_cross_encoder_is_one_error_line_and_writes_nothing(
    cross_encoder_dir, tiny_model_dir, files, run_cse, tmp_path_factory, library_lines, kind, message
):
    """sentence-transformers would score with a random head (a plain model) or end in a traceback (the others)."""
    model = _no_trained_cross_encoder(kind, tmp_path_factory.mktemp("models"), cross_encoder_dir, tiny_model_dir)
    (files / "out.csv").write_text("an earlier file\n")
    code, out, err = run_cse(["label", "out.csv", "--pairs", "pairs.tsv", "--cross-encoder", str(model)])
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"error: --cross-encoder '{model}': "), err
    assert message in lines[0] and "Traceback" not in err and out == ""
    assert not library_lines  # transformers' load report, sentence-transformers' "Converting ...": before the error
    assert (files / "out.csv").read_text() == "an earlier file\n"


@pytest.fixture
def library_lines() -> Iterator[list[str]]:
    """What transformers and sentence-transformers log during the test (their own handlers write to the terminal
    pytest started with, which capsys does not see)."""
    lines: list[str] = []
    recorder = logging.Handler()
    recorder.emit = lambda record: lines.append(record.getMessage())
    loggers = [logging.getLogger(name) for name in ("transformers", "sentence_transformers")]
    for logger in loggers:
        logger.addHandler(recorder)
    yield lines
    for logger in loggers:
        logger.removeHandler(recorder)


def test_a_trained_cross_encoders_library_lines_are_still_shown(cross_encoder_dir, files, run_cse, library_lines):
    """Held while the model is checked, and logged once it passes: here transformers' report of a key the model
    does not use."""
    model = shutil.copytree(cross_encoder_dir, files / "extra")
    weights = load_file(model / "model.safetensors")
    save_file({**weights, "unused.weight": torch.zeros(2)}, model / "model.safetensors")
    _label(run_cse, model, "out.csv", "--pairs", "pairs.tsv", "--columns", "{sent0: sentence1, sent1: sentence2}")
    assert any("unused.weight" in line for line in library_lines), library_lines


def test_an_output_link_is_written_through_and_kept(cross_encoder_dir, files, run_cse):
    (files / "store").mkdir()
    (files / "store" / "silver.csv").write_text("an earlier file\n")
    (files / "out.csv").symlink_to("store/silver.csv")
    _label(
        run_cse,
        cross_encoder_dir,
        "out.csv",
        "--pairs",
        "pairs.tsv",
        "--columns",
        "{sent0: sentence1, sent1: sentence2}",
    )
    _label(
        run_cse,
        cross_encoder_dir,
        "plain.csv",
        "--pairs",
        "pairs.tsv",
        "--columns",
        "{sent0: sentence1, sent1: sentence2}",
    )
    assert (files / "out.csv").is_symlink() and os.readlink(files / "out.csv") == "store/silver.csv"
    assert (files / "store" / "silver.csv").read_text() == (files / "plain.csv").read_text()
    assert sorted(path.name for path in (files / "store").iterdir()) == ["silver.csv"]  # no temporary file left


def _warnings(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.getMessage().startswith("warning:")]


def test_pairs_changed_by_comparing_normalized_texts_are_counted_in_one_warning(
    cross_encoder_dir, files, run_cse, caplog
):
    given = [
        ("a man is playing.", "a woman is playing."),
        ("the dog", "The  Dog"),  # the same text, once case and spaces are ignored
        ("A MAN is playing.", "a girl"),  # written with the first spelling of its first text
        ("a man is playing.", "A woman is playing."),  # a repeat of the first pair
        ("the boy", "the girl"),
        ("the boy", "the girl"),  # repeats as written: not the normalisation's doing
        ("the girl", "the boy"),
    ]
    (files / "p.jsonl").write_text("".join(json.dumps({"sent0": a, "sent1": b}) + "\n" for a, b in given))
    with caplog.at_level(logging.INFO):
        _label(run_cse, cross_encoder_dir, "out.csv", "--pairs", "p.jsonl")
    as_written = []  # the pairs an exact comparison of texts keeps
    for first, second in given:
        if first != second and {first, second} not in [set(pair) for pair in as_written]:
            as_written.append((first, second))
    rows = [{row["sent0"], row["sent1"]} for row in _read(files / "out.csv")]
    left_out = len(as_written) - len(rows)
    respelled = sum(row not in [set(pair) for pair in as_written] for row in rows)
    assert (left_out, respelled) == (2, 1)  # the data above has both kinds
    assert _warnings(caplog) == [
        f"warning: pairs p.jsonl: texts compared case- and space-insensitively changed {left_out + respelled} pairs: "
        f"{left_out} left out (the same text twice, or a repeat) and {respelled} written with the spelling of a "
        "text's first occurrence"
    ]


def test_no_warning_when_the_normalisation_changes_no_pair(cross_encoder_dir, files, run_cse, caplog):
    given = [("a man is playing.", "a woman is playing."), ("the boy", "the girl"), ("the girl", "the boy")]
    (files / "p.jsonl").write_text("".join(json.dumps({"sent0": a, "sent1": b}) + "\n" for a, b in given))
    with caplog.at_level(logging.INFO):
        out = _label(run_cse, cross_encoder_dir, "out.csv", "--pairs", "p.jsonl")
    assert _warnings(caplog) == [] and "(1 repeated or self pairs left out)" in out


def test_sentences_left_out_by_comparing_normalized_texts_are_counted_in_one_warning(
    cross_encoder_dir, files, run_cse, caplog
):
    lines = ["a man is playing.", "A MAN is playing.", "the dog", "The  Dog", "the dog", "a girl", "a  girl", "the boy"]
    (files / "s.txt").write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.INFO):
        _label(run_cse, cross_encoder_dir, "out.csv", "--sentences", "s.txt", "--sampling", "random")
    exact = list(dict.fromkeys(lines))  # distinct as written
    normalized = {" ".join(line.lower().split()) for line in lines}  # case and runs of spaces ignored
    left_out = len(exact) - len(normalized)
    assert left_out == 3  # "A MAN is playing.", "The  Dog", "a  girl"; the exact repeat "the dog" is not counted
    assert _warnings(caplog) == [
        f"warning: sentences s.txt: sentences compared case- and space-insensitively left out {left_out} that "
        "differ from an earlier one only in case or spaces (the first spelling is kept)"
    ]
    written = {text for row in _read(files / "out.csv") for text in (row["sent0"], row["sent1"])}
    assert written <= {"a man is playing.", "the dog", "a girl", "the boy"}  # the first spelling of each


def test_no_sentence_warning_when_only_exact_repeats_are_left_out(cross_encoder_dir, files, run_cse, caplog):
    (files / "s.txt").write_text("the dog\nthe boy\nthe dog\na girl\n")
    with caplog.at_level(logging.INFO):
        _label(run_cse, cross_encoder_dir, "out.csv", "--sentences", "s.txt", "--sampling", "random")
    assert _warnings(caplog) == []
