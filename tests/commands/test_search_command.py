import csv
import io
import math

import pytest
import torch
from sentences import LINES_WITH_SEPARATORS
from transformers import AutoTokenizer

from cse.commands.search import tsv_row
from cse.export.directory import write_model_directory
from cse.models.encoder import SentenceEncoder

CORPUS = [
    "a man is playing a guitar.",
    "the dog is in the park",
    "a girl",
    'the boy said "a dog"',
    "a woman\tis playing",
    "the man is on the dog",
]
QUERIES = ["a dog in the park", "a girl is playing a guitar"]


@pytest.fixture(scope="module")
def model(tiny_model_dir, tmp_path_factory):
    torch.manual_seed(0)
    encoder = SentenceEncoder.from_pretrained(str(tiny_model_dir), "avg").eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    return write_model_directory(encoder, tokenizer, tmp_path_factory.mktemp("search") / "model"), encoder, tokenizer


def _files(tmp_path) -> tuple[str, str]:
    (tmp_path / "corpus.txt").write_text("\n".join(CORPUS) + "\n")
    (tmp_path / "queries.txt").write_text("\n".join(QUERIES) + "\n")
    return str(tmp_path / "corpus.txt"), str(tmp_path / "queries.txt")


@pytest.mark.parametrize(("top_k", "threshold"), [(3, None), (10, None), (6, 0.9), (4, -1.0)])
def test_search_prints_the_nearest_sentences_as_tsv(top_k, threshold, model, tmp_path, run_cse):
    model_dir, encoder, tokenizer = model
    extra = ["--threshold", str(threshold)] if threshold is not None else []
    code, out, err = run_cse(["search", str(model_dir), *_files(tmp_path), "--top-k", str(top_k), *extra])
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out), delimiter="\t"))

    # The reference: each sentence embedded on its own, cosine similarity by hand, sorted.
    def embed(sentence: str) -> list[float]:
        with torch.no_grad():
            return encoder(**tokenizer([sentence], return_tensors="pt"))[0].tolist()

    def cosine(u: list[float], v: list[float]) -> float:
        return sum(a * b for a, b in zip(u, v, strict=True)) / math.sqrt(sum(a * a for a in u) * sum(b * b for b in v))

    expected = []
    for query in QUERIES:
        scores = sorted(
            ((cosine(embed(query), embed(s)), line) for line, s in enumerate(CORPUS, start=1)), reverse=True
        )
        kept = [(score, line) for score, line in scores[:top_k] if threshold is None or score >= threshold]
        expected += [(query, rank, score, line) for rank, (score, line) in enumerate(kept, start=1)]
    assert [(row["query"], int(row["rank"]), int(row["line"])) for row in rows] == [
        (query, rank, line) for query, rank, _, line in expected
    ]
    assert [float(row["score"]) for row in rows] == pytest.approx([score for *_, score, _ in expected], abs=1e-5)
    assert [row["sentence"] for row in rows] == [CORPUS[line - 1] for *_, line in expected]  # tabs, quotes intact


def test_bad_input_is_one_error_line(model, tmp_path, monkeypatch, run_cse):
    monkeypatch.chdir(tmp_path)
    corpus, queries = _files(tmp_path)
    (tmp_path / "queries.txt").write_text("a dog\n   \n")
    for args, message in [
        ([corpus, queries], f"queries {queries} line 2: blank line"),
        ([corpus, str(tmp_path / "none.txt")], "none.txt: no such file"),
        ([corpus, corpus, "--top-k", "0"], "--top-k: must be at least 1, got 0"),
        ([corpus, corpus, "--threshold", "nan"], "--threshold: a cosine similarity in [-1, 1], got nan"),
        ([corpus, corpus, "--threshold", "2"], "--threshold: a cosine similarity in [-1, 1], got 2.0"),
        ([corpus, corpus, "--threshold", "-1.5"], "--threshold: a cosine similarity in [-1, 1], got -1.5"),
    ]:
        code, out, err = run_cse(["search", str(model[0]), *args])
        lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert code == 2 and len(lines) == 1 and message in lines[0], err
        assert out == ""


def test_line_numbers_count_newlines_whatever_the_lines_hold(model, tmp_path, run_cse):
    corpus = LINES_WITH_SEPARATORS
    (tmp_path / "corpus.txt").write_bytes(("\ufeff" + "\r\n".join(corpus) + "\n").encode())
    queries = ["the girl is playing a guitar", "a girl\fis here", "a dog\ris playing"]  # each the text of a corpus line
    (tmp_path / "queries.txt").write_bytes(("\n".join(queries) + "\n").encode())
    code, out, err = run_cse(
        ["search", str(model[0]), str(tmp_path / "corpus.txt"), str(tmp_path / "queries.txt"), "--top-k", "1"]
    )
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out, newline=""), delimiter="\t"))
    assert [(row["query"], int(row["line"]), row["sentence"]) for row in rows] == [
        (query, corpus.index(query) + 1, query) for query in queries
    ]
    assert all(float(row["score"]) == pytest.approx(1.0, abs=1e-5) for row in rows)


@pytest.mark.parametrize("field", ["plain", "a\ttab", 'a "quote"', "a lone\rreturn", "a\nnewline", "a\u2028b", ""])
def test_tsv_rows_read_back_with_a_csv_reader(field):
    text = tsv_row(("q", 1, field)) + tsv_row(("next", 2, "row"))
    assert list(csv.reader(io.StringIO(text, newline=""), delimiter="\t")) == [["q", "1", field], ["next", "2", "row"]]
