"""Why `cse fit` refuses `bf16-true` and `16-true`: torch's AdamW on half-precision weights, at SimCSE's learning rate
(3e-5) and BERT's weight scale (initializer std 0.02), against float32 weights given the same gradients."""

from collections.abc import Callable

import pytest
import torch

from cse.config.lightning_settings import HALF_WEIGHTS, check_training_precision
from cse.errors import InputError

LEARNING_RATE = 3.0e-5  # unsupervised SimCSE, BERT-base (Gao et al., 2021, Table D.1)
SHAPE = (768, 768)


def _adamw_steps(dtype: torch.dtype, gradient: Callable[[torch.Generator], torch.Tensor], steps: int = 10):
    """(weights before, weights after) `steps` AdamW steps on weights of `dtype` drawn with std 0.02, in float32."""
    generator = torch.Generator().manual_seed(0)
    start = (torch.randn(SHAPE, generator=generator) * 0.02).to(dtype)
    weight = torch.nn.Parameter(start.clone())
    optimizer = torch.optim.AdamW([weight], lr=LEARNING_RATE, weight_decay=0.0)
    for _ in range(steps):
        weight.grad = gradient(generator).to(dtype)
        optimizer.step()
    return start.float(), weight.detach().float()


def test_bfloat16_weights_pushed_the_same_way_for_ten_steps_mostly_do_not_move():
    same_way = lambda generator: torch.ones(SHAPE)  # noqa: E731 - every step moves each weight by the learning rate
    before, after = _adamw_steps(torch.float32, same_way)
    torch.testing.assert_close(after - before, torch.full(SHAPE, -10 * LEARNING_RATE), rtol=0, atol=1e-6)
    before, after = _adamw_steps(torch.bfloat16, same_way)
    # bfloat16 spaces numbers from 2^-7 on (0.0078) by 2^-14 or more: a step of 3e-5, under half that, rounds back to
    # the weight, every time. Most of BERT's weights (std 0.02) are that large.
    moved = after != before
    assert moved.float().mean() < 0.5
    assert (before[~moved].abs() >= 2**-7).all()


def test_float16_weights_turn_to_nan_under_small_gradients():
    small = lambda generator: torch.randn(SHAPE, generator=generator) * 1e-3  # noqa: E731
    _, after = _adamw_steps(torch.float16, small)  # their squares, AdamW's second moment, underflow float16
    assert after.isnan().any()
    _, after = _adamw_steps(torch.float32, small)
    assert after.isfinite().all()


@pytest.mark.parametrize(("precision", "mixed"), [("bf16-true", "bf16-mixed"), ("16-true", "16-mixed")])
def test_half_precision_weights_are_refused_naming_the_mixed_precision(precision, mixed):
    with pytest.raises(InputError) as error:
        check_training_precision(precision)
    assert str(error.value).startswith(f"trainer.precision: {precision} keeps the weights and AdamW's state in ")
    assert str(error.value).endswith(f"; use {mixed} (float32 weights, half-precision compute)")
    assert set(HALF_WEIGHTS) == {"bf16-true", "16-true"}


@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed", "32-true", "64-true", "32", None])
def test_precisions_with_float32_weights_pass(precision):
    check_training_precision(precision)
