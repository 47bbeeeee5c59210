"""End-to-end, for every encoder family: `cse fit` (unsupervised with the MLM auxiliary loss, and on triplets) ->
the exported `best_model` -> transformers, sentence-transformers and `cse.load_model` -> `cse eval`."""

import csv
import json
from pathlib import Path

import pytest
import torch
from exported_embeddings import SENTENCES, assert_loaders_give, transformers_embeddings
from scipy.stats import spearmanr
from tiny_families import FAMILIES, FITTED, pooling_id

import cse

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# The recipe of each kind of data: unsupervised SimCSE as the quickstart, triplets as the paper's supervised recipe.
RECIPES = {"unsupervised": "quickstart", "triplets": "sup-simcse-bert-base"}
FITS = [(family, data) for family in FAMILIES for data in RECIPES]


def _fit(run_cse, shrunk_recipe_args, model_dir: Path, recipe: str, *overrides: str):
    """Two steps at batch 8, validated once at the end: the best checkpoint is that of step 2."""
    args = shrunk_recipe_args(
        recipe,
        *overrides,
        model_dir=model_dir,
        batch_size=8,
        max_steps=2,
        val_check_interval=2,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
    )
    return run_cse(args)


@pytest.mark.parametrize(
    ("family", "data"), FITS, ids=[f"{family}-{data}-{pooling_id(FITTED[family][data])}" for family, data in FITS]
)
def test_fit_exports_a_model_every_loader_and_eval_agree_on(
    family, data, family_model_dir, triplets_file, senteval_dir, run_cse, shrunk_recipe_args, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    pooler_type, mlp_only_train = FITTED[family][data]
    overrides = ["--model.pooler_type", pooler_type, "--model.mlp_only_train", str(mlp_only_train).lower()]
    if data == "unsupervised":
        overrides += ["--model.do_mlm", "true"]
    else:
        overrides += ["--data.train_file", str(triplets_file)]
    code, out, err = _fit(run_cse, shrunk_recipe_args, family_model_dir(family), RECIPES[data], *overrides)
    assert code == 0, err
    best_model = Path(out.strip().splitlines()[-1].split("best model: ")[-1])
    run_dir = best_model.parent
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert sum(1 for row in rows if row.get("train/loss")) == 2
    assert any(row.get("train/mlm_loss") for row in rows) == (data == "unsupervised")
    assert json.loads((best_model / "cse_config.json").read_text())["pooler_type"] == pooler_type

    # The trained encoder, read back from the best checkpoint (not from the export): every loader gives its embedding.
    expected = cse.load_model(run_dir / "checkpoints" / "best-step=2.ckpt", device="cpu").encode(
        SENTENCES, convert_to="torch"
    )
    assert_loaders_give(expected, best_model)

    # `cse eval` scores STS-B dev as transformers' embeddings do, and as validation chose the model by.
    report_file = tmp_path / "eval.json"
    args = ["eval", str(best_model), "--mode", "dev", "--tasks", "stsb", "--data-dir", str(senteval_dir)]
    code, _, err = run_cse([*args, "--json", str(report_file)])
    assert code == 0, err
    score = json.loads(report_file.read_text())["scores"]["STSBenchmark"]
    dev_file = senteval_dir / "STS" / "STSBenchmark" / "sts-dev.csv"
    pairs = [line.split("\t") for line in dev_file.read_text().splitlines()[1:]]
    first, second = (transformers_embeddings(best_model, [pair[i] for pair in pairs]) for i in (0, 1))
    # In float32, as cse scores (and validates): a tiny random model's cosines all lie within 1e-5 of 1, where float64
    # cosines of the same embeddings rank differently.
    cosines = torch.nn.functional.cosine_similarity(first, second)
    assert score == pytest.approx(100 * spearmanr(cosines, [float(pair[2]) for pair in pairs])[0], abs=1e-6)
    # Validation encodes the dev pairs in other batches (longest first), so with other padding: the cosines agree to
    # float32 rounding, which can order two nearly equal ones differently. On these 60 pairs a tie made or parted moves
    # Spearman by about 5e-4 points (seen on another CPU), two neighbours swapped by 6e-3; 1e-2 points (1e-4 of rho,
    # as the module's validation tests) allows that, while scoring other embeddings or other pairs moves it by points.
    validated = next(float(row["val/stsb_spearman"]) for row in rows if row.get("val/stsb_spearman"))
    assert score == pytest.approx(100 * validated, abs=1e-2)


@pytest.mark.parametrize("family", [name for name, family in FAMILIES.items() if not family.has_pooler])
def test_cls_with_the_mlp_kept_is_one_line_for_a_family_without_a_pooler(
    family, family_model_dir, run_cse, shrunk_recipe_args, tmp_path, monkeypatch
):
    """The supervised recipe keeps the MLP at inference, which the export stores as the model's Linear+Tanh pooler."""
    monkeypatch.chdir(tmp_path)
    code, _, err = _fit(run_cse, shrunk_recipe_args, family_model_dir(family), "sup-simcse-bert-base")
    assert code == 2
    model_type = FAMILIES[family].model_type
    assert err.strip().splitlines()[-1] == (
        f"error: model.pooler_type: 'cls' keeps its MLP at inference, which the export stores as the model's pooler, "
        f"but {model_type} has no Linear pooler; set model.mlp_only_train: true or use another pooler"
    )
    assert not list(tmp_path.glob("runs/*/version_*")), "a run folder was left behind"
