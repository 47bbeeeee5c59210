"""Matryoshka end to end: `cse fit` of the shipped recipe logs the Spearman of each truncation, exports the trained
dimensions, and the export truncates alike in sentence-transformers (`truncate_dim`), `cse.load_model` and the CLI;
the model card shows the exported checkpoint's STS dev by dimension."""

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from sentence_transformers import SentenceTransformer

from cse.config.recipes import recipe_dir
from cse.export.model_card import EXAMPLE
from cse.inference.api import load_model

RECIPE = "unsup-simcse-bert-base-matryoshka"
DIMENSIONS = [32, 16, 8]  # the tiny model's hidden size first
SENTENCES = ["a man is playing a guitar.", "the dog is in the park", "a girl", "a boy is on the dog", "the woman"]


@pytest.fixture(scope="module")
def run_dir(fit_shrunk_recipe, tmp_path_factory) -> Path:
    """The Matryoshka recipe shrunk to the tiny model: 4 steps, validated at steps 2 and 4, the best one exported."""
    return fit_shrunk_recipe(
        RECIPE,
        tmp_path_factory.mktemp("matryoshka"),
        "--model.matryoshka_dims",
        json.dumps(DIMENSIONS),
        "--model.learning_rate",
        "1.0e-3",
    )


def _validations(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open() as handle:
        return [row for row in csv.DictReader(handle) if row["val/stsb_spearman"]]


def test_recipe_is_the_unsupervised_recipe_with_sentence_transformers_matryoshka_dimensions():
    plain, matryoshka = (
        yaml.safe_load((recipe_dir() / f"{name}.yaml").read_text()) for name in ("unsup-simcse-bert-base", RECIPE)
    )
    assert matryoshka["model"].pop("matryoshka_dims") == [768, 512, 256, 128, 64]  # matryoshka_nli.py's
    # The MLP is kept at inference: the prefixes trained are its output's (tests/models/test_simcse_matryoshka.py).
    assert (plain["model"].pop("mlp_only_train"), matryoshka["model"].pop("mlp_only_train")) == (True, False)
    matryoshka["trainer"]["logger"]["init_args"]["name"] = plain["trainer"]["logger"]["init_args"]["name"]
    assert matryoshka == plain


def test_each_validation_logs_the_spearman_of_every_truncation(run_dir):
    validations = _validations(run_dir)
    assert [int(row["step"]) + 1 for row in validations] == [2, 4]
    assert "val/stsb_spearman_dim32" not in validations[0], "the full embedding is val/stsb_spearman"
    for row in validations:
        assert all(-1 <= float(row[f"val/stsb_spearman_dim{d}"]) <= 1 for d in DIMENSIONS[1:])


def test_export_records_the_trained_dimensions_and_the_card_shows_their_dev_spearman(run_dir):
    model_dir = run_dir / "best_model"
    assert json.loads((model_dir / "cse_config.json").read_text())["matryoshka_dims"] == DIMENSIONS
    best = int(next((run_dir / "checkpoints").glob("best-step=*.ckpt")).stem.removeprefix("best-step="))
    row = next(row for row in _validations(run_dir) if int(row["step"]) + 1 == best)
    scores = [row["val/stsb_spearman"]] + [row[f"val/stsb_spearman_dim{d}"] for d in DIMENSIONS[1:]]
    expected = ", ".join(
        f"{d}{' (full)' if d == 32 else ''}: {100 * float(score):.2f}"
        for d, score in zip(DIMENSIONS, scores, strict=True)
    )
    card = (model_dir / "README.md").read_text()
    assert f"| STS dev Spearman ×100 by embedding size (Matryoshka) | {expected} |" in card
    assert "summed over the embedding's first d dimensions" in card and "matryoshka_dims = [32, 16, 8]" in card
    assert "| step | Spearman ×100 | Pearson ×100 | Spearman, dim 16 | Spearman, dim 8 |" in card
    assert "truncate_dim=8)" in card and "title = {Matryoshka Representation Learning}" in card


def test_each_snippet_of_the_card_runs_as_written(run_dir, monkeypatch):
    monkeypatch.chdir(run_dir)  # the card loads the export by its folder's name, best_model
    full = load_model("best_model", device="cpu").encode(EXAMPLE, convert_to="torch")  # (2, 32)
    blocks = re.findall(r"```python\n(.*?)```", (run_dir / "best_model" / "README.md").read_text(), flags=re.DOTALL)
    assert len(blocks) == 4  # sentence-transformers, cse, truncated, transformers
    for block in blocks:
        namespace = {}
        exec(compile(block, "README.md", "exec"), namespace)  # each block on its own, as a reader copies it
        truncated = re.search(r"truncate_dim=(\d+)\)", block)
        expected = full[:, : int(truncated.group(1))] if truncated else full
        torch.testing.assert_close(torch.as_tensor(namespace["embeddings"]), expected, atol=1e-5, rtol=0, msg=block)


@pytest.mark.parametrize("dimension", [16, 8, 5])  # 5: any prefix, not only a trained one, as sentence-transformers
def test_truncate_dim_gives_the_first_dimensions_in_sentence_transformers_and_cse(run_dir, dimension):
    model_dir = run_dir / "best_model"
    full = load_model(model_dir, device="cpu").encode(SENTENCES, convert_to="torch")  # (N, 32)
    assert full.shape == (5, 32)
    expected = full[:, :dimension]
    st_model = SentenceTransformer(str(model_dir), device="cpu", truncate_dim=dimension)
    st = st_model.encode(SENTENCES, convert_to_tensor=True)
    cse_model = load_model(model_dir, device="cpu", truncate_dim=dimension)
    ours = cse_model.encode(SENTENCES, convert_to="torch")
    assert st.shape == ours.shape == (5, dimension) and cse_model.dimension == dimension
    torch.testing.assert_close(st, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours, expected, atol=0, rtol=0)
    # Normalized after truncation, as sentence-transformers' normalize_embeddings and cosine similarity.
    st_unit = st_model.encode(SENTENCES, convert_to_tensor=True, normalize_embeddings=True)
    torch.testing.assert_close(
        cse_model.encode(SENTENCES, normalize=True, convert_to="torch"), st_unit, atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        torch.from_numpy(cse_model.similarity(SENTENCES, SENTENCES)), st_model.similarity(st, st), atol=1e-5, rtol=0
    )


def test_cse_encode_and_search_take_truncate_dim(run_dir, tmp_path, run_cse):
    model_dir = run_dir / "best_model"
    (tmp_path / "in.txt").write_text("\n".join(SENTENCES) + "\n")
    code, out, err = run_cse(
        ["encode", str(model_dir), str(tmp_path / "in.txt"), str(tmp_path / "out.npy"), "--truncate-dim", "8"]
    )
    assert code == 0, err
    expected = load_model(model_dir, device="cpu").encode(SENTENCES)[:, :8]
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
    assert out.strip().endswith("5 x 8 float32")

    code, out, err = run_cse(
        [
            "search",
            str(model_dir),
            str(tmp_path / "in.txt"),
            str(tmp_path / "in.txt"),
            "--top-k",
            "1",
            "--truncate-dim",
            "8",
        ]
    )
    assert code == 0, err
    rows = [line.split("\t") for line in out.splitlines()[1:]]
    unit = expected / np.linalg.norm(expected, axis=1, keepdims=True)
    cosines = unit @ unit.T  # (N, N) on the 8 dimensions
    assert [int(row[3]) - 1 for row in rows] == list(np.argmax(cosines, axis=1))
    np.testing.assert_allclose([float(row[2]) for row in rows], cosines.max(axis=1), atol=1e-5)


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("0", "--truncate-dim: must be at least 1, got 0"),
        ("33", "truncate_dim: 33 is larger than the model's 32-dimensional embedding"),
    ],
)
def test_a_truncation_beyond_the_embedding_is_one_line(run_dir, tmp_path, run_cse, flag, message):
    (tmp_path / "in.txt").write_text("a dog\n")
    args = ["encode", str(run_dir / "best_model"), str(tmp_path / "in.txt"), str(tmp_path / "out.npy")]
    code, _, err = run_cse([*args, "--truncate-dim", flag])
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and errors == [f"error: {message}"], err


def test_resuming_with_other_dimensions_is_refused(run_dir, shrunk_recipe_args, run_cse):
    args = shrunk_recipe_args(
        RECIPE,
        "--model.matryoshka_dims",
        "[32, 16]",
        "--trainer.logger.init_args.save_dir",
        str(run_dir.parents[1]),
        "--ckpt_path",
        str(run_dir / "checkpoints" / "last.ckpt"),
        max_steps=6,
    )
    code, _, err = run_cse(args)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "model.matryoshka_dims [32, 16, 8] (now [32, 16])" in errors[0], err
