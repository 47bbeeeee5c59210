"""ESimCSE end to end: `cse fit` of the shipped recipe trains with word repetition and the momentum queue, keeps the
momentum backbone and queue in its checkpoints but exports the trained encoder only, which transformers,
sentence-transformers and `cse` load alike; combinations ESimCSE does not define are one line at start."""

from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoTokenizer

import cse
from cse.config.recipes import recipe_dir
from cse.runs.checkpoint_model import load_checkpoint_encoder

RECIPE = "unsup-esimcse-bert-base"
SENTENCES = ["a man is playing a guitar.", "the dog is in the park", "a girl", "boys are playing on the dog"]


@pytest.fixture(scope="module")
def run_dir(fit_shrunk_recipe, tmp_path_factory) -> Path:
    """The recipe shrunk to the tiny model: 4 steps of 16 sentences, a queue of 40, validated at steps 2 and 4."""
    return fit_shrunk_recipe(
        RECIPE,
        tmp_path_factory.mktemp("esimcse"),
        "--model.momentum_queue_size",
        "40",
        "--model.learning_rate",
        "1.0e-3",
    )


def test_recipe_is_the_unsupervised_recipe_with_esimcse_reference_settings():
    plain, esimcse = (
        yaml.safe_load((recipe_dir() / f"{name}.yaml").read_text()) for name in ("unsup-simcse-bert-base", RECIPE)
    )
    # caskcsg/sentemb ESimCSE/run.sh, bert-base-uncased: --neg_size 160 --momentum 0.995 --dup_rate 0.32
    assert esimcse["model"].pop("momentum_queue_size") == 160 and esimcse["model"].pop("momentum") == 0.995
    assert esimcse["data"].pop("word_repetition_rate") == 0.32
    esimcse["trainer"]["logger"]["init_args"]["name"] = plain["trainer"]["logger"]["init_args"]["name"]
    assert esimcse == plain


def test_checkpoint_keeps_the_momentum_backbone_and_a_full_queue(run_dir):
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert state["momentum_queue._extra_state"] == {"filled": 40, "epoch": 0}  # 4 steps × 16 > 40: full
    name = "backbone.embeddings.word_embeddings.weight"
    trained, momentum = state[f"encoder.{name}"], state[f"momentum_queue.{name}"]
    assert not torch.equal(trained, momentum), "the momentum copy lags the trained weights"


def test_export_holds_the_trained_encoder_and_every_loader_gives_its_embedding(run_dir):
    model_dir = run_dir / "best_model"
    checkpoint = next((run_dir / "checkpoints").glob("best-step=*.ckpt"))
    encoder, tokenizer = load_checkpoint_encoder(checkpoint)
    with torch.no_grad():
        expected = encoder(**tokenizer(SENTENCES, padding=True, truncation=True, return_tensors="pt"))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with torch.no_grad():  # mlp_only_train: the [CLS] state, as cse_config.json's embedding says
        states = AutoModel.from_pretrained(model_dir).eval()(**tokenizer(SENTENCES, padding=True, return_tensors="pt"))
    assert '"embedding": "cls"' in (model_dir / "cse_config.json").read_text()
    loaders = {
        "transformers": states.last_hidden_state[:, 0],
        "sentence-transformers": SentenceTransformer(str(model_dir), device="cpu").encode(
            SENTENCES, convert_to_tensor=True
        ),
        "cse": cse.load_model(model_dir, device="cpu").encode(SENTENCES, convert_to="torch"),
    }
    for loader, embeddings in loaders.items():
        torch.testing.assert_close(embeddings, expected, atol=1e-5, rtol=0, msg=lambda m, name=loader: f"{name}: {m}")
    exported = load_file(model_dir / "model.safetensors")
    assert not any("momentum" in key for key in exported)
    assert len(exported) == len(encoder.export_state_dict())
    card = (model_dir / "README.md").read_text()
    assert "ESimCSE word repetition" in card and "word_repetition_rate = 0.32" in card
    assert "momentum_queue_size = 40, momentum = 0.995" in card


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--model.momentum_queue_size", "8"], "model.momentum_queue_size: ESimCSE's momentum queue is defined for"),
        (["--data.word_repetition_rate", "0.3"], "data.word_repetition_rate: ESimCSE's word repetition makes"),
        (["--model.momentum_queue_size", "8", "--model.do_mlm", "true"], "model.momentum_queue_size: not with"),
    ],
)
def test_combinations_esimcse_does_not_define_are_one_line(
    options, message, shrunk_recipe_args, tmp_path, run_cse, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("sent0\tsent1\n" + "".join(f"a man {i}\ta boy {i}\n" for i in range(40)))
    args = shrunk_recipe_args(
        "quickstart", "--data.train_file", str(pairs), *options, max_steps=1, val_check_interval=1
    )
    code, _, err = run_cse(args)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and errors[0].startswith(f"error: {message}"), err
    assert "Traceback" not in err


def test_the_queue_with_a_mixture_of_datasets_is_one_line(shrunk_recipe_args, tmp_path, run_cse, monkeypatch):
    """A mixture keeps each batch's negatives within one dataset; the queue would bring in the other datasets'."""
    monkeypatch.chdir(tmp_path)
    for name in ("a", "b"):
        (tmp_path / f"{name}.txt").write_text("".join(f"{name} sentence {i}\n" for i in range(40)))
    mixture = ["--data.train_file", "null", "--data.train_files", "[a.txt, b.txt]"]
    args = shrunk_recipe_args(RECIPE, *mixture, "--model.momentum_queue_size", "8", max_steps=1, val_check_interval=1)
    code, _, err = run_cse(args)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert errors[0].startswith("error: model.momentum_queue_size: the queue would give each batch of data.train_files")
    assert not (tmp_path / "runs").exists()
    code, _, err = run_cse([*args, "--model.momentum_queue_size", "0"])
    assert code == 0, err


@pytest.mark.parametrize(
    ("recipe", "method"),
    [
        ("unsup-simcsepp-bert-base", "SimCSE++ (model.off_dropout_negatives)"),
        ("unsup-tsdae-bert-base", "TSDAE (model.objective)"),
    ],
)
def test_word_repetition_with_a_method_of_one_view_is_one_line_before_training(
    recipe, method, shrunk_recipe_args, tmp_path, run_cse, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    args = shrunk_recipe_args(
        recipe,
        "--data.word_repetition_rate",
        "0.3",
        "--trainer.precision",
        "32-true",
        max_steps=1,
        val_check_interval=1,
    )
    code, _, err = run_cse(args)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and "Traceback" not in err, err
    assert errors == [
        f"error: data.word_repetition_rate: 0.3 (ESimCSE's repeated positive) is not defined together with {method}, "
        "which trains on one view of each sentence; set it to null"
    ]
    assert not list(tmp_path.glob("runs/*/version_*/checkpoints"))
