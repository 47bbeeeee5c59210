"""SimCSE++ end to end: the shipped recipe is the unsupervised BERT-base recipe plus SimCSE++'s three keys; `cse fit`
of it exports a best model that transformers, sentence-transformers and `cse.load_model` embed alike, equal to the
best checkpoint's encoder, and whose model card names the objective."""

import json
from pathlib import Path

import pytest
import torch
import yaml
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoTokenizer

from cse.config.recipes import recipe_dir
from cse.inference.api import load_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RECIPE = "unsup-simcsepp-bert-base"
SENTENCES = ["a man is playing a guitar.", "the dog is in the park", "a girl", "a boy is on the dog"]


@pytest.fixture(scope="module")
def run_dir(fit_shrunk_recipe, tmp_path_factory) -> Path:
    """The recipe shrunk to the tiny model: 4 steps in float32, validated at steps 2 and 4, the best one exported."""
    return fit_shrunk_recipe(RECIPE, tmp_path_factory.mktemp("simcsepp"))


def test_recipe_is_the_unsupervised_recipe_with_simcsepps_settings():
    plain, simcsepp = (
        yaml.safe_load((recipe_dir() / f"{name}.yaml").read_text()) for name in ("unsup-simcse-bert-base", RECIPE)
    )
    added = {key: simcsepp["model"].pop(key) for key in ("off_dropout_negatives", "dimension_contrast_weight")}
    assert added == {"off_dropout_negatives": True, "dimension_contrast_weight": 0.1}  # run_re_vicreg.sh
    assert simcsepp["model"].pop("dimension_contrast_temp") == 5.0  # train_re_vicreg.py's sw_temp
    simcsepp["trainer"]["logger"]["init_args"]["name"] = plain["trainer"]["logger"]["init_args"]["name"]
    assert simcsepp == plain


def test_every_loader_gives_the_best_checkpoints_embedding(run_dir):
    best_model = run_dir / "best_model"
    checkpoint = next((run_dir / "checkpoints").glob("best-step=*.ckpt"))
    expected = load_model(checkpoint, device="cpu").encode(SENTENCES, convert_to="torch")  # (N, 32)
    # mlp_only_train: the embedding is the [CLS] state (cse_config.json), as a transformers user computes it.
    assert json.loads((best_model / "cse_config.json").read_text())["embedding"] == "cls"
    model, info = AutoModel.from_pretrained(best_model, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    batch = AutoTokenizer.from_pretrained(best_model)(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        plain = model.eval()(**batch).last_hidden_state[:, 0]
    st = SentenceTransformer(str(best_model), device="cpu").encode(SENTENCES, convert_to_tensor=True)
    ours = load_model(best_model, device="cpu").encode(SENTENCES, convert_to="torch")
    for embeddings in (plain, st, ours):
        torch.testing.assert_close(embeddings, expected, atol=1e-5, rtol=0)


def test_model_card_names_simcsepp_and_its_settings(run_dir):
    card = (run_dir / "best_model" / "README.md").read_text()
    assert "the negatives encoded with dropout off (SimCSE++ off-dropout sampling, Xu et al., 2023)" in card
    assert "dimension-wise contrastive loss (SimCSE++ DCL" in card
    assert "dimension_contrast_weight = 0.1, dimension_contrast_temp = 5.0" in card
    assert "title = {{SimCSE++}: Improving Contrastive Learning" in card
