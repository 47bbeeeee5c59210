"""SimCSE++ in `SimCSE` (`model.off_dropout_negatives`, `model.dimension_contrast_weight`): the off-dropout pass, the
full loss and its gradients against a naive reimplementation of the reference's `cl_forward`
(github.com/Jiahao004/SimCSE-plus-plus, simcse/models_re_vicreg.py, commit 899e49b), GradCache, and the checks."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from sentences import TRIPLETS, tokenized_rows
from trainerless import without_trainer
from transformers import AutoTokenizer

from cse.data.collate import ExampleCollator
from cse.errors import InputError
from cse.models.batch import TrainingBatch, token_tensors
from cse.models.simcse import SimCSE
from cse.models.simcsepp import check_simcsepp_mode, off_dropout_embeddings

SEED = 7
# (off_dropout_negatives, dimension_contrast_weight, dimension_contrast_temp): SimCSE++, each part alone
SETTINGS = {"simcse++": (True, 0.1, None), "off-dropout": (True, 0.0, None), "dcl": (False, 0.5, 2.0)}


def _sentences(model_dir) -> TrainingBatch:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return ExampleCollator(tokenizer)(tokenized_rows(tokenizer, [row[:1] for row in TRIPLETS]))  # (B, 1, L)


def _module(model_dir, setting: str, **options) -> SimCSE:
    off_dropout, weight, temperature = SETTINGS[setting]
    torch.manual_seed(0)  # the MLP's initialization
    module = SimCSE(
        str(model_dir),
        pooler_type="cls",
        mlp_only_train=True,  # the reference's run_re_vicreg.sh
        off_dropout_negatives=off_dropout,
        dimension_contrast_weight=weight,
        dimension_contrast_temp=temperature,
        **options,
    )
    return without_trainer(module.train())


def _reference_loss(module: SimCSE, batch: TrainingBatch, setting: str, chunk: int | None = None) -> torch.Tensor:
    """The reference's `cl_forward` written out with plain autograd: the two dropout views in one pass (or chunk by
    chunk, as GradCache encodes them), z0 from the encoder in eval mode with the MLP applied, the loss formulas."""
    off_dropout, weight, temperature = SETTINGS[setting]
    tokens = {key: value[:, 0] for key, value in token_tensors(batch).items()}  # (B, L)
    size = tokens["input_ids"].size(0)
    twice = {key: value.repeat_interleave(2, dim=0) for key, value in tokens.items()}  # rows 2i, 2i + 1: sentence i
    rows = 2 * (chunk or size)
    pieces = [
        module.encoder(**{k: v[start : start + rows] for k, v in twice.items()}) for start in range(0, 2 * size, rows)
    ]
    views = torch.cat(pieces).view(size, 2, -1)  # (2B, H) -> (B, 2, H)
    z1, z2 = views[:, 0], views[:, 1]
    pos_sim = F.cosine_similarity(z1, z2, dim=-1) / 0.05
    if off_dropout:
        module.encoder.eval()
        z0 = module.encoder.mlp(module.encoder(**tokens))  # eval mode: no dropout, no MLP (mlp_only_train): add it
        module.encoder.train()
        cos_sim = F.cosine_similarity(z0.unsqueeze(0), z0.unsqueeze(1), dim=-1) / 0.05
        neg_sim = torch.cat([cos_sim + torch.eye(size) * math.log(1e-45), pos_sim.unsqueeze(-1)], dim=-1)
        loss = (-pos_sim + torch.logsumexp(neg_sim, dim=-1)).mean()
    else:  # the reference's sampling_strategy "None": unsupervised SimCSE
        cos_sim = F.cosine_similarity(z1.unsqueeze(1), z2.unsqueeze(0), dim=-1) / 0.05
        loss = (-torch.diag(cos_sim) + torch.logsumexp(cos_sim, dim=-1)).mean()
    if weight > 0:
        bn = torch.nn.BatchNorm1d(z1.size(1), affine=False)
        cov = bn(z1).T @ bn(z2) / size / (temperature or 5.0)
        loss = loss + weight * (-torch.diagonal(cov) + torch.logsumexp(cov, dim=-1)).mean()
    return loss


def _grads(module: SimCSE) -> dict[str, torch.Tensor]:
    grads = {name: param.grad for name, param in module.named_parameters() if param.requires_grad}
    assert all(grad is not None for grad in grads.values())  # every trainable parameter takes part
    return grads


def _max_difference(first: dict, second: dict) -> float:
    assert first.keys() == second.keys()
    return max((first[name] - second[name]).abs().max().item() for name in first)


@pytest.mark.parametrize("mini_batch_size", [None, 2], ids=["whole-batch", "gradcache"])
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_loss_and_gradients_are_the_references(tiny_model_dir, setting, mini_batch_size):
    batch = _sentences(tiny_model_dir)
    module = _module(tiny_model_dir, setting, mini_batch_size=mini_batch_size)
    reference = copy.deepcopy(module)
    torch.manual_seed(SEED)
    loss = module.training_step(batch, 0)
    loss.backward()
    torch.manual_seed(SEED)  # the same dropout masks: the off-dropout pass draws no random numbers
    expected = _reference_loss(reference, batch, setting, chunk=mini_batch_size)
    expected.backward()
    assert (loss - expected).abs().item() < 1e-5
    assert _max_difference(_grads(module), _grads(reference)) < 1e-5


def test_simcsepp_changes_the_loss_of_unsupervised_simcse(tiny_model_dir):
    """Guards the comparison above: each part of SimCSE++ gives another loss than SimCSE's on the same masks."""
    batch = _sentences(tiny_model_dir)
    torch.manual_seed(0)
    plain = without_trainer(SimCSE(str(tiny_model_dir), pooler_type="cls", mlp_only_train=True).train())
    torch.manual_seed(SEED)
    simcse_loss = plain.training_step(batch, 0)
    for setting in SETTINGS:
        torch.manual_seed(SEED)
        assert (_module(tiny_model_dir, setting).training_step(batch, 0) - simcse_loss).abs().item() > 1e-3


@pytest.mark.parametrize(("pooler_type", "mlp_only_train"), [("avg", False), ("cls", False), ("cls", True)])
def test_off_dropout_embeddings_are_an_eval_mode_forward(tiny_model_dir, pooler_type, mlp_only_train):
    """Equal to the backbone in eval mode (no dropout anywhere, attention probabilities included), with the MLP
    applied as in training (the reference applies it); and different from a training forward (dropout is on)."""
    torch.manual_seed(0)
    encoder = SimCSE(str(tiny_model_dir), pooler_type=pooler_type, mlp_only_train=mlp_only_train).encoder.train()
    tokens = {key: value[:, 0] for key, value in token_tensors(_sentences(tiny_model_dir)).items()}  # (B, L)
    off_dropout = off_dropout_embeddings(encoder, tokens, chunk_rows=None)
    expected = copy.deepcopy(encoder).eval()(**tokens)
    if pooler_type == "cls" and mlp_only_train:  # eval mode leaves the training-only MLP out: the reference keeps it
        expected = encoder.mlp(expected)
    torch.testing.assert_close(off_dropout, expected, atol=1e-6, rtol=0)
    assert (encoder(**tokens) - expected).abs().max().item() > 1e-3


def test_the_off_dropout_pass_restores_every_modules_mode(tiny_model_dir):
    module = _module(tiny_model_dir, "simcse++")
    module.encoder.backbone.encoder.layer[1].eval()  # a module left in eval mode on purpose stays so
    modes = {name: layer.training for name, layer in module.named_modules()}
    module.training_step(_sentences(tiny_model_dir), 0).backward()
    assert {name: layer.training for name, layer in module.named_modules()} == modes
    assert not all(modes.values()) and any(modes.values())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dimension_contrast_weight": -0.1}, "model.dimension_contrast_weight: must be a finite number >= 0"),
        ({"dimension_contrast_weight": math.nan}, "model.dimension_contrast_weight: must be a finite number >= 0"),
        ({"dimension_contrast_weight": 0.1, "dimension_contrast_temp": 0.0}, "model.dimension_contrast_temp: must be"),
        ({"dimension_contrast_temp": 5.0}, "model.dimension_contrast_temp: 5.0 given while model.dimension_contrast_w"),
        (
            {"off_dropout_negatives": True, "matryoshka_dims": [32, 16]},
            "model.off_dropout_negatives: SimCSE++ is not defined with model.matryoshka_dims [32, 16]",
        ),
        (
            {"dimension_contrast_weight": 0.1, "matryoshka_dims": [32]},
            "model.dimension_contrast_weight: SimCSE++ is not defined with model.matryoshka_dims [32]",
        ),
    ],
)
def test_bad_settings_are_one_line_naming_the_key(tiny_model_dir, options, message):
    with pytest.raises(InputError) as error:
        SimCSE(str(tiny_model_dir), **options)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


@pytest.mark.parametrize("mode", ["pairs", "triplets", "scored"])
def test_simcsepp_is_refused_for_data_that_is_not_unsupervised(mode):
    settings = {"off_dropout_negatives": False, "dimension_contrast_weight": 0.1}
    with pytest.raises(InputError, match=rf"^model.dimension_contrast_weight: 0.1 is SimCSE\+\+, .* not for {mode} "):
        check_simcsepp_mode(settings, mode)
    check_simcsepp_mode(settings, "unsupervised")  # accepted
    check_simcsepp_mode({"off_dropout_negatives": False, "dimension_contrast_weight": 0.0}, mode)  # off: accepted


def test_simcsepp_on_triplets_stops_cse_fit_with_one_line(
    shrunk_recipe_args, tiny_data, run_cse, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    lines = tiny_data.train_file.read_text().splitlines()[:20]
    train_file = tmp_path / "triplets.tsv"
    train_file.write_text(
        "sent0\tsent1\thard_neg\n"
        + "".join(f"{a}\t{a.upper()}\t{b}\n" for a, b in zip(lines[:-1], lines[1:], strict=True))
    )
    args = shrunk_recipe_args(
        "sup-simcse-bert-base", "--data.train_file", str(train_file), batch_size=4, max_steps=1, val_check_interval=1
    )
    result = run_cse([*args, "--model.off_dropout_negatives", "true"])
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert result.code == 2 and "Traceback" not in result.err
    assert errors == [
        "error: model.off_dropout_negatives: True is SimCSE++, defined for unsupervised data (one sentence per row, "
        "its two dropout views the positive pair), not for triplets training data; set it off"
    ], result.err
