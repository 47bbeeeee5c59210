"""scripts/benchmark_mining.py on the tiny model at tiny sizes: its figures parse and agree with each other, its sample
and its stand-in encoder are what they say."""

import importlib.util
import json
import math
import re
from pathlib import Path

import pytest
import torch

from cse.commands.mine import build_parser

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "benchmark_mining.py"
NUMBER = r"([\d,.]+)"
ENCODE = re.compile(
    rf"encode: {NUMBER} sentences \({NUMBER} distinct\) from (\S+) in {NUMBER} s: {NUMBER} sentences/s; 1M sentences: "
    rf"{NUMBER} s \({NUMBER} h\) \| batch {NUMBER}, chunk {NUMBER}, .*, model load {NUMBER} s; load average [\d.]+"
)
SEARCH = re.compile(rf"search: {NUMBER} anchors against {NUMBER} corpus embeddings of {NUMBER} dims = {NUMBER} MiB; .*")
CHUNK = re.compile(
    rf"  chunk {NUMBER}: {NUMBER} anchors in {NUMBER} s: {NUMBER} anchors/s; 1M anchors: {NUMBER} s \({NUMBER} h\) "
    rf"\| backend torch, corpus set-up {NUMBER} s; peak RSS {NUMBER} MiB \({NUMBER} MiB at start, {NUMBER} MiB "
    rf"after the set-up, corpus embeddings {NUMBER} MiB\); {NUMBER} negatives for {NUMBER} pairs; load average [\d.]+"
)
END_TO_END = re.compile(
    rf"end to end: cse mine on {NUMBER} corpus sentences and {NUMBER} pairs: {NUMBER} s as it reports \({NUMBER} s "
    rf"with Python start-up\); stages 1 \+ 2 predict {NUMBER} s = model load {NUMBER} \+ encode {NUMBER} \+ search "
    rf"{NUMBER}; {NUMBER} negatives; load average [\d.]+"
)


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("benchmark_mining", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _figures(pattern: re.Pattern, line: str) -> list[float]:
    match = pattern.fullmatch(line)
    assert match, line
    return [float(value.replace(",", "")) if re.fullmatch(NUMBER, value) else value for value in match.groups()]


def test_the_three_stages_print_figures_that_add_up(script, tiny_model_dir, tmp_path, capsys):
    sentences = [f"the man is playing guitar {i}" for i in range(24)] + ["The  man is playing guitar 3"]  # 3 again
    (tmp_path / "corpus.txt").write_text("\n".join(sentences) + "\n")
    sample, anchors, corpus_size, pairs, hidden = 60, 30, 4000, 8, 32  # hidden: the tiny model's
    options = ["--sample", str(sample), "--anchors", str(anchors), "--corpus-size", str(corpus_size)]
    options += ["--pairs", str(pairs), "--chunk-sizes", "16", "--work-dir", str(tmp_path / "work")]  # one process
    # Window of ranks 0-2 and a filter that refuses nothing: every pair gets exactly one negative.
    options += ["--mine-options", "--range-max 3 --max-score 1", "--corpus", str(tmp_path / "corpus.txt")]
    script.main(["--model", str(tiny_model_dir), *options])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5 and lines[0].startswith("load average at start: ")

    count, distinct, origin, seconds, rate, projected, hours, batch, chunk, load_s = _figures(ENCODE, lines[1])
    assert (count, distinct, origin) == (sample, sample - 1, "corpus.txt")  # the repeats get their index: distinct
    assert (batch, chunk) == (build_parser().get_default("batch_size"), build_parser().get_default("chunk_size"))
    assert distinct / rate == pytest.approx(seconds, rel=0.01, abs=0.006)  # the distinct are encoded
    assert projected == pytest.approx(1e6 / rate, rel=0.01) and hours == pytest.approx(projected / 3600, abs=0.06)

    searched, size, dims, mib = _figures(SEARCH, lines[2])
    assert (searched, size, dims) == (anchors, corpus_size, hidden)
    assert mib == pytest.approx(corpus_size * hidden * 4 / 2**20, abs=0.06)
    chunk, mined, seconds, search_rate, projected, hours, _, peak, start, setup, embeddings, negatives, pairs_ = (
        _figures(CHUNK, lines[3])
    )
    assert (chunk, mined, negatives, pairs_, embeddings) == (16, anchors, anchors, anchors, mib)
    assert anchors / search_rate == pytest.approx(seconds, rel=0.01, abs=0.006)
    assert projected == pytest.approx(1e6 / search_rate, rel=0.01)
    assert hours == pytest.approx(projected / 3600, abs=0.06)
    assert peak >= setup >= start > 0

    corpus, mined_pairs, reported, wall, predicted, load, encode, search, negatives = _figures(END_TO_END, lines[4])
    assert (corpus, mined_pairs, negatives) == (sample, pairs, pairs)
    assert wall >= reported > 0 and load == pytest.approx(load_s, abs=0.006)
    assert encode == pytest.approx((distinct + pairs) / _figures(ENCODE, lines[1])[4], rel=0.01, abs=0.006)
    assert search == pytest.approx(pairs / search_rate * sample / corpus_size, rel=0.01, abs=0.006)
    assert predicted == pytest.approx(load + encode + search, abs=0.021)  # four roundings to 0.01
    triplets = [json.loads(line) for line in (tmp_path / "work" / "triplets.jsonl").read_text().splitlines()]
    corpus_lines = (tmp_path / "work" / "corpus.txt").read_text().splitlines()
    assert [row["sent0"] for row in triplets] == corpus_lines[:pairs]
    assert all(row["sent1"] == "In short, " + row["sent0"] for row in triplets)
    assert all(row["hard_neg"] in corpus_lines and row["hard_neg"] != row["sent0"] for row in triplets)


def test_the_sample_repeats_the_lines_each_repeat_made_distinct(script):
    assert script.sample_sentences(["a man", "", "  a dog "], 5) == ["a man", "a dog", "a man 2", "a dog 3", "a man 4"]


def test_anchors_of_the_stand_in_encoder_score_one_over_root_two_with_their_positive(script):
    encoder = script.SyntheticEncoder(dimension=384)
    corpus = encoder.encode([f"sentence {i}" for i in range(1000)], 64, True, "torch")  # (1000, 384)
    assert torch.linalg.vector_norm(corpus, dim=-1) == pytest.approx(torch.ones(1000), abs=1e-5)
    encoder.positives = corpus
    anchors = encoder.encode([f"Q: sentence {i}" for i in range(500)], 64, True, "torch")  # (500, 384)
    scores = anchors @ corpus.T  # (500, 1000)
    # cos(v, v + n) with |v| = 1 and |n|^2 ~ 1 (n of 384 coordinates of variance 1/384) is ~1/sqrt(2); to the
    # other (independent) rows, ~0 with standard deviation 1/sqrt(384).
    assert scores.diagonal().mean().item() == pytest.approx(1 / math.sqrt(2), abs=0.01)
    others = scores[:, 500:]
    assert others.mean().item() == pytest.approx(0, abs=0.005)
    assert others.std().item() == pytest.approx(1 / math.sqrt(384), abs=0.005)
