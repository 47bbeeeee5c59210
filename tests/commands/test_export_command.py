"""`cse fit` then `cse export`, per pooler: transformers, sentence-transformers and `cse` give the checkpoint's
embedding, and the model card states that run's hyperparameters and metrics."""

import csv
import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

from cse.export.model_card import EXAMPLE
from cse.models.simcse import SimCSE

SENTENCES = ["a man is playing a guitar in the park.", "a dog", "the girl is on the boy", "a"]
# (pooler, mlp_only_train, model fixture): every pooler on BERT; on RoBERTa (no token_type_ids, <s> as [CLS]) the MLP
# kept at inference, which the export writes as RobertaModel's pooler.
POOLERS = [
    ("cls", False, "three_layer_model_dir"),
    ("cls", True, "three_layer_model_dir"),
    ("cls_before_pooler", False, "three_layer_model_dir"),
    ("avg", False, "three_layer_model_dir"),
    ("avg_top2", False, "three_layer_model_dir"),
    ("avg_first_last", False, "three_layer_model_dir"),
    ("cls", False, "tiny_roberta_dir"),
]
EVAL_SCORES = {"STS12": 0.5123, "STS-B": 0.61, "Avg.": 0.56115}


@pytest.fixture(scope="module")
def three_layer_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """Three layers, so that avg_top2 (layers 2, 3) and avg_first_last (layers 1, 3) differ."""
    directory = tmp_path_factory.mktemp("three-layer-bert")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    config = BertConfig.from_pretrained(tiny_model_dir, num_hidden_layers=3)
    torch.manual_seed(1)
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def _code_blocks(card: str) -> dict[str, str]:
    """The card's Python snippets by the library they import first."""
    blocks = re.findall(r"```python\n(.*?)```", card, flags=re.DOTALL)
    return {re.search(r"^(?:from|import) (\w+)", block, flags=re.MULTILINE).group(1): block for block in blocks}


@pytest.mark.parametrize(("pooler_type", "mlp_only_train", "model"), POOLERS)
def test_fit_export_round_trip(
    pooler_type, mlp_only_train, model, request, shrunk_recipe_args, run_cse, tiny_data, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    model_dir = request.getfixturevalue(model)
    fit = run_cse(
        shrunk_recipe_args(
            "quickstart",
            "--model.pooler_type",
            pooler_type,
            "--model.mlp_only_train",
            str(mlp_only_train).lower(),
            "--model.learning_rate",
            "1.0e-3",  # far enough from the base model that a wrong weight would show
            model_dir=model_dir,
            max_steps=4,
            num_sanity_val_steps=0,
        )
    )
    assert fit.code == 0, fit.err
    run_dir = Path(fit.out.strip().splitlines()[-1].split("best model: ")[-1]).parent
    (tmp_path / "eval.json").write_text(json.dumps({"scores": EVAL_SCORES}))
    code, out, err = run_cse(["export", str(run_dir), "exported", "--eval-json", "eval.json"])
    assert code == 0, err
    exported = tmp_path / "exported"
    assert out.strip() == f"exported: {Path('exported')}"

    # The reference: the best checkpoint's module in eval mode, through Lightning's own loading path.
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    validations = [row for row in rows if row.get("val/stsb_spearman")]
    best_row = max(validations, key=lambda row: float(row["val/stsb_spearman"]))
    best_step = int(best_row["step"]) + 1  # the CSV counts from 0; checkpoint names use trainer.global_step
    checkpoint_path = run_dir / "checkpoints" / f"best-step={best_step}.ckpt"
    module = SimCSE.load_from_checkpoint(checkpoint_path).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    def reference(sentences: list[str]) -> torch.Tensor:
        with torch.no_grad():
            return module(dict(tokenizer(sentences, padding=True, return_tensors="pt")))

    # transformers: no missing or unexpected weights; sentence-transformers: built-in modules only.
    _, info = AutoModel.from_pretrained(exported, output_loading_info=True)
    assert not any(info.values()), info
    st_embeddings = SentenceTransformer(str(exported), device="cpu").encode(SENTENCES, convert_to_tensor=True)
    torch.testing.assert_close(st_embeddings, reference(SENTENCES), atol=1e-5, rtol=0)

    # Each usage snippet of the card runs as written and gives the same embeddings.
    card = (exported / "README.md").read_text()
    snippets = _code_blocks(card)
    assert set(snippets) == {"sentence_transformers", "cse", "torch"}
    for library, code_block in snippets.items():
        namespace = {}
        exec(compile(code_block, f"README.md ({library})", "exec"), namespace)
        embeddings = torch.as_tensor(namespace["embeddings"])
        torch.testing.assert_close(embeddings, reference(EXAMPLE), atol=1e-5, rtol=0, msg=library)

    # The card states this run: every hyperparameter in the checkpoint, the validation log, the eval table.
    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    for key, value in checkpoint["hyper_parameters"].items():
        if not key.startswith("_"):
            shown = value if isinstance(value, str) else json.dumps(value)
            assert f"| `model.{key}` | `{shown}` |" in card
    assert "| `data.batch_size` | `16` |" in card and "| `trainer.max_steps` | `4` |" in card
    for row in validations:
        step, spearman, pearson = int(row["step"]) + 1, float(row["val/stsb_spearman"]), float(row["val/stsb_pearson"])
        mark = "**" if step == best_step else ""
        assert f"| {mark}{step}{mark} | {mark}{100 * spearman:.2f}{mark} | {100 * pearson:.2f} |" in card
    assert f"Spearman {100 * float(best_row['val/stsb_spearman']):.2f}" in card
    assert f"`best-step={best_step}.ckpt`, after {best_step} optimizer steps" in card
    sentences = sum(1 for line in Path(tiny_data.train_file).read_text().splitlines() if line.strip())
    assert f"`{Path(tiny_data.train_file).name}`, {sentences} sentences" in card
    for task, score in EVAL_SCORES.items():
        assert f"| {task} | {100 * score:.2f} |" in card
    assert "Gao, Tianyu and Yao, Xingcheng and Chen, Danqi" in card and "EMNLP" in card
    config = json.loads((exported / "cse_config.json").read_text())
    if mlp_only_train:  # the exported embedding is the pre-MLP [CLS], and both files say so
        assert config["embedding"] == "cls" and "before the MLP" in config["description"]
        assert "before the MLP" in card

    # `fit` exported the same model (with a card of its own) through the same function.
    fit_export = run_dir / "best_model"
    assert sorted(p.name for p in fit_export.rglob("*")) == sorted(p.name for p in exported.rglob("*"))
    for weights in exported.rglob("model.safetensors"):
        fit_weights = load_file(fit_export / weights.relative_to(exported))
        for name, tensor in load_file(weights).items():
            torch.testing.assert_close(fit_weights[name], tensor, atol=0, rtol=0)
    assert "| `data.batch_size` | `16` |" in (fit_export / "README.md").read_text()
