from types import SimpleNamespace

import pytest
import torch
from sentence_transformers import SentenceTransformer
from torch import nn

from cse.errors import InputError
from cse.models.optimization import build_optimizer, check_schedule, fuses, parameter_groups


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dense = nn.Linear(4, 4)
        self.LayerNorm = nn.LayerNorm(4)
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)


def test_no_weight_decay_on_biases_and_layer_norm():
    block = _Block()
    decay, no_decay = parameter_groups(block, weight_decay=0.01)
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(block.dense.weight)}
    assert {id(p) for p in no_decay["params"]} == {
        id(block.dense.bias),
        id(block.LayerNorm.weight),
        id(block.LayerNorm.bias),
    }


@pytest.mark.parametrize(("warmup", "total"), [(0, 10), (3, 10)])
def test_linear_schedule_per_step(warmup, total):
    optimizer, scheduler = build_optimizer(
        _Block(), learning_rate=1.0, weight_decay=0.0, warmup_steps=warmup, total_steps=total
    )
    rates = []
    for _ in range(total):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    # Hand formula of transformers' linear schedule: ramp up over warmup, then straight down to 0 at `total`.
    expected = [step / warmup if step < warmup else (total - step) / (total - warmup) for step in range(total)]
    assert rates == pytest.approx(expected)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0)


@pytest.mark.parametrize(("warmup", "reference"), [(0, "constantlr"), (3, "warmupconstant")])
def test_constant_schedule_is_sentence_transformers_own(warmup, reference):
    """TSDAE's reference run (`model.fit(scheduler='constantlr')`): sentence-transformers' `_get_scheduler`."""
    total = 10
    ours, ours_scheduler = build_optimizer(_Block(), 1.0, 0.0, warmup, total, schedule="constant")
    theirs = torch.optim.AdamW(_Block().parameters(), lr=1.0)
    theirs_scheduler = SentenceTransformer._get_scheduler(theirs, reference, warmup_steps=warmup, t_total=total)
    rates = []
    for _ in range(total):
        rates.append((ours.param_groups[0]["lr"], theirs.param_groups[0]["lr"]))
        for optimizer, scheduler in ((ours, ours_scheduler), (theirs, theirs_scheduler)):
            optimizer.step()
            scheduler.step()
    assert [mine for mine, _ in rates] == pytest.approx([reference for _, reference in rates])
    assert rates[-1][0] == 1.0


def test_an_unknown_schedule_is_one_line():
    with pytest.raises(InputError, match="^model.lr_schedule: must be one of linear, constant, got 'cosine'$"):
        check_schedule("cosine")


def test_adamw_hyperparameters():
    optimizer, _ = build_optimizer(_Block(), learning_rate=3.0e-5, weight_decay=0.0, warmup_steps=0, total_steps=5)
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.defaults["betas"] == (0.9, 0.999) and optimizer.defaults["eps"] == 1.0e-8
    assert optimizer.defaults["lr"] == 3.0e-5


@pytest.mark.parametrize(
    ("device_types", "fused"),
    [(["cuda"], True), (["cpu"], True), (["mps"], True), (["meta"], False), (["cpu", "mps"], False)],
)
def test_adamw_is_fused_on_one_device_type_with_torchs_kernel(device_types, fused):
    """Apple's MPS included: torch's fused AdamW runs there (its optimizer tests list cpu, cuda and mps)."""
    parameters = [SimpleNamespace(device=torch.device(device_type)) for device_type in device_types]  # no MPS here
    assert fuses(parameters) is fused
    if fused:  # torch's own check before a fused step would accept these parameters' device type
        assert set(device_types) <= set(torch.utils._foreach_utils._get_fused_kernels_supported_devices())
