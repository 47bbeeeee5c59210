"""`model.matryoshka_dims` in `SimCSE`: the objective summed over prefixes of its own embeddings, with GradCache and
under autocast; each truncation validated against scipy; invalid settings refused at start."""

import pytest
import sentences
import torch
import torch.nn.functional as F
import yaml
from lightning.pytorch import Trainer
from lightning.pytorch.plugins import MixedPrecision
from scipy.stats import spearmanr
from trainerless import without_trainer
from transformers import AutoTokenizer

from cse.config.recipes import recipe_dir
from cse.data.collate import ExampleCollator
from cse.data.datamodule import SimCSEDataModule
from cse.data.scored_pairs import read_scored_pairs
from cse.errors import InputError
from cse.losses.cosent import CoSENTLoss
from cse.losses.info_nce import InfoNCELoss
from cse.models.batch import TrainingBatch
from cse.models.matryoshka import check_matryoshka_hidden_size
from cse.models.simcse import SimCSE

DIMENSIONS = [32, 16, 8, 4]  # the tiny model's hidden size 32 first
WEIGHTS = [1.0, 0.5, 2.0, 0.25]


def _batch(tokenizer, views: int) -> TrainingBatch:
    rows = [texts[:views] for texts in sentences.TRIPLETS]
    return ExampleCollator(tokenizer)(sentences.tokenized_rows(tokenizer, rows))  # (B, k, L)


def _columns(module: SimCSE, tokenizer, views: int) -> list[torch.Tensor]:
    """Each column of TRIPLETS encoded on its own (eval mode: no dropout), (B, H) each."""
    return [
        module(dict(tokenizer([row[k] for row in sentences.TRIPLETS], padding=True, return_tensors="pt")))
        for k in range(views)
    ]


def _prefix_sum(loss, columns: list[torch.Tensor], **options) -> torch.Tensor:
    """Σ_d w_d · loss(each column's first d coordinates): the objective written out prefix by prefix."""
    return sum(w * loss(*(c[:, :d] for c in columns), **options) for d, w in zip(DIMENSIONS, WEIGHTS, strict=True))


@pytest.mark.parametrize("views", [1, 2, 3], ids=["unsupervised", "pairs", "triplets"])
def test_training_loss_is_infonce_summed_over_prefixes_of_the_embedding(tiny_model_dir, views):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    options = {"matryoshka_dims": DIMENSIONS, "matryoshka_weights": WEIGHTS, "hard_negative_weight": 1.5}
    if views < 3:
        options.pop("hard_negative_weight")
    module = without_trainer(SimCSE(str(tiny_model_dir), pooler_type="avg", **options).eval())  # eval: no dropout
    loss = module.training_step(_batch(tokenizer, views), 0)
    with torch.no_grad():
        columns = _columns(module, tokenizer, views)
    columns = columns * 2 if views == 1 else columns  # unsupervised: the sentence is its own positive (no dropout)
    expected = _prefix_sum(InfoNCELoss(0.05, 1.5 if views == 3 else 0.0), columns)
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)


def test_scored_pairs_sum_cosent_over_prefixes(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    module = SimCSE(str(tiny_model_dir), pooler_type="avg", matryoshka_dims=DIMENSIONS, matryoshka_weights=WEIGHTS)
    module = without_trainer(module.eval())
    score = torch.tensor([0.9, 0.5, 0.1, 0.7, 0.3, 0.0])
    loss = module.training_step(_batch(tokenizer, 2) | {"score": score}, 0)
    with torch.no_grad():
        columns = _columns(module, tokenizer, 2)
    torch.testing.assert_close(loss, _prefix_sum(CoSENTLoss(20.0), columns, score=score), atol=1e-5, rtol=1e-5)


def _grads(module: SimCSE) -> dict[str, torch.Tensor]:
    grads = {name: param.grad for name, param in module.named_parameters() if param.requires_grad}
    assert all(grad is not None for grad in grads.values())
    return grads


@pytest.mark.parametrize("views", [1, 3])
def test_grad_cache_gives_the_loss_and_gradients_of_the_whole_batch(tiny_model_dir, views):
    """With dropout on: the chunked module against the same chunks encoded with every activation kept (so with the
    same dropout masks) and the prefixes' losses written out, back-propagated by plain autograd."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    batch = _batch(tokenizer, views)
    modules = []
    for _ in range(2):
        torch.manual_seed(0)  # the same MLP head in both
        modules.append(SimCSE(str(tiny_model_dir), matryoshka_dims=DIMENSIONS, matryoshka_weights=WEIGHTS).train())
    grad_cache, reference = without_trainer(modules[0]), modules[1]
    grad_cache.hparams.mini_batch_size = 2

    torch.manual_seed(1)
    loss = grad_cache.training_step(batch, 0)
    loss.backward()
    torch.manual_seed(1)
    tokens = {key: value.repeat(1, 2, 1) if views == 1 else value for key, value in batch.items()}  # (B, k', L)
    size, encoded, length = tokens["input_ids"].shape
    flat = {key: value.reshape(size * encoded, length) for key, value in tokens.items()}  # (Bk', L)
    rows = 2 * encoded  # mini_batch_size examples with all their views
    starts = range(0, size * encoded, rows)
    chunks = [reference.encoder(**{k: v[start : start + rows] for k, v in flat.items()}) for start in starts]
    embeddings = torch.cat(chunks).view(size, encoded, -1)  # (Bk', H) -> (B, k', H)
    expected = _prefix_sum(InfoNCELoss(0.05), list(embeddings.unbind(1)))
    expected.backward()

    assert (loss - expected).abs().item() < 1e-5
    difference = max((grad - _grads(reference)[name]).abs().max().item() for name, grad in _grads(grad_cache).items())
    assert difference < 1e-5


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_prefix_losses_are_computed_in_float32_under_autocast(tiny_model_dir, dtype):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    # `cls` keeps its MLP at inference (a Linear, which autocast runs in the half type): the embeddings are half.
    module = without_trainer(SimCSE(str(tiny_model_dir), pooler_type="cls", matryoshka_dims=DIMENSIONS).eval())
    batch = _batch(tokenizer, 2)
    with torch.autocast("cpu", dtype=dtype):
        loss = module.training_step(batch, 0)
        embeddings = module({k: v.flatten(0, 1) for k, v in batch.items()}).view(6, 2, -1)  # (2B, H) -> (B, 2, H)
    assert embeddings.dtype == dtype and loss.dtype == torch.float32
    anchor, positive = (column.double() for column in embeddings.unbind(1))  # the half embeddings, scored exactly
    expected = sum(InfoNCELoss(0.05)(anchor[:, :d], positive[:, :d]) for d in DIMENSIONS)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)


@pytest.mark.parametrize("mixed", [False, True], ids=["fp32", "bf16-mixed"])
def test_validation_logs_the_spearman_of_each_truncation_as_scipy_computes_it(
    tiny_model_dir, tiny_data, tmp_path, mixed
):
    datamodule = SimCSEDataModule(
        str(tiny_data.train_file), dev_file=str(tiny_data.dev_file), tokenizer_name_or_path=str(tiny_model_dir)
    )
    module = SimCSE(str(tiny_model_dir), pooler_type="avg", matryoshka_dims=DIMENSIONS)
    # bf16-mixed on the CPU stands in for a GPU's 16-mixed: the truncations are still scored in float32.
    precision = {"precision": None, "plugins": [MixedPrecision("bf16-mixed", "cpu")]} if mixed else {}
    trainer = Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, default_root_dir=tmp_path, **precision
    )
    metrics = trainer.validate(module, datamodule, verbose=False)[0]

    pairs = read_scored_pairs(tiny_data.dev_file)
    module.eval()
    with torch.no_grad():  # every sentence of a side in one float32 batch, outside any autocast
        first = module(dict(datamodule.tokenizer(pairs.sentence1, padding=True, return_tensors="pt")))
        second = module(dict(datamodule.tokenizer(pairs.sentence2, padding=True, return_tensors="pt")))
    expected = {
        d: spearmanr(F.cosine_similarity(first[:, :d], second[:, :d]).numpy(), pairs.scores).statistic
        for d in DIMENSIONS
    }
    truncations = {f"val/stsb_spearman_dim{d}" for d in DIMENSIONS[1:]}  # the full one is val/stsb_spearman
    assert set(metrics) == {"val/stsb_spearman", "val/stsb_pearson"} | truncations
    assert metrics["val/stsb_spearman"] == pytest.approx(expected[32], abs=1e-4)  # the full embedding
    for d in DIMENSIONS[1:]:
        assert metrics[f"val/stsb_spearman_dim{d}"] == pytest.approx(expected[d], abs=1e-4)
    assert len({round(value, 4) for value in expected.values()}) == len(DIMENSIONS), "the truncations must differ"


@pytest.mark.parametrize("pooler_type", ["cls", "prompt"])
def test_an_mlp_dropped_at_inference_is_refused(tiny_model_dir, pooler_type):
    """Its prefixes would be trained (those of the MLP's output), the exported embedding's not."""
    prompt = {"prompt_template": "the [X] is [MASK] ."} if pooler_type == "prompt" else {}
    with pytest.raises(InputError) as error:
        SimCSE(str(tiny_model_dir), pooler_type=pooler_type, mlp_only_train=True, matryoshka_dims=[32, 16], **prompt)
    message = str(error.value)
    assert message.startswith("model.matryoshka_dims: [32, 16] with model.mlp_only_train: true") and "\n" not in message


def test_the_recipe_trains_the_prefixes_of_the_embedding_it_exports(tiny_model_dir):
    """sentence-transformers' `MatryoshkaLoss` truncates the embedding the model gives at inference: the recipe's
    training embedding (dropout off) is its eval-mode embedding, which the export gives."""
    settings = yaml.safe_load((recipe_dir() / "unsup-simcse-bert-base-matryoshka.yaml").read_text())["model"]
    module = SimCSE(
        str(tiny_model_dir),
        pooler_type=settings["pooler_type"],
        mlp_only_train=settings["mlp_only_train"],
        matryoshka_dims=DIMENSIONS,
    )
    module.apply(lambda child: setattr(child, "p", 0.0) if isinstance(child, torch.nn.Dropout) else None)
    module.encoder.backbone.config.attention_probs_dropout_prob = 0.0
    texts = [row[0] for row in sentences.TRIPLETS]
    batch = dict(AutoTokenizer.from_pretrained(tiny_model_dir)(texts, padding=True, return_tensors="pt"))
    with torch.no_grad():
        trained = module.train()(batch)  # what MatryoshkaLoss truncates
        exported = module.eval()(batch)
    for d in DIMENSIONS:
        torch.testing.assert_close(trained[:, :d], exported[:, :d], rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"matryoshka_dims": []}, "model.matryoshka_dims: must list at least one dimension"),
        ({"matryoshka_dims": [32, 0]}, "model.matryoshka_dims: every dimension must be >= 1, got [32, 0]"),
        ({"matryoshka_dims": [16, 32]}, "model.matryoshka_dims: must be strictly decreasing, largest first"),
        ({"matryoshka_dims": [32, 16, 16]}, "model.matryoshka_dims: must be strictly decreasing"),
        ({"matryoshka_dims": [64, 32]}, "model.matryoshka_dims: 64 is larger than the embedding of"),
        (
            {"matryoshka_dims": [32, 16], "matryoshka_weights": [1.0]},
            "model.matryoshka_weights: [1.0] must hold one weight per dimension",
        ),
        (
            {"matryoshka_dims": [32, 16], "matryoshka_weights": [1.0, -1.0]},
            "model.matryoshka_weights: every weight must be a finite number > 0, got [1.0, -1.0]",
        ),
        ({"matryoshka_weights": [1.0]}, "model.matryoshka_weights: [1.0] given without model.matryoshka_dims"),
    ],
)
def test_invalid_settings_are_refused(tiny_model_dir, options, message):
    with pytest.raises(InputError) as error:
        SimCSE(str(tiny_model_dir), **options)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_leaving_out_the_full_embedding_is_warned_about():
    warning = check_matryoshka_hidden_size([512, 256], 768, "bert-base-uncased")
    assert warning.startswith("model.matryoshka_dims: [512, 256] leaves out the full embedding (768")
    assert check_matryoshka_hidden_size([768, 256], 768, "bert-base-uncased") is None
    assert check_matryoshka_hidden_size(None, 768, "bert-base-uncased") is None


def test_off_by_default_logs_no_truncation(tiny_model_dir):
    module = SimCSE(str(tiny_model_dir))
    assert type(module.loss_fn) is InfoNCELoss and len(module.eval_spearman_by_dimension) == 0
