import pytest
import torch

from cse.models.poolers import MLPHead, masked_mean, pool, uses_mlp

B, L, H = 3, 5, 4
MASK = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])


def _mean_of_real_tokens(hidden: torch.Tensor) -> torch.Tensor:
    """Independent reference: a Python loop over each sentence's unpadded tokens."""
    rows = []
    for i in range(B):
        length = int(MASK[i].sum())
        rows.append(sum(hidden[i, t] for t in range(length)) / length)
    return torch.stack(rows)


@pytest.fixture
def layers() -> tuple[torch.Tensor, ...]:
    torch.manual_seed(0)
    return tuple(torch.randn(B, L, H) for _ in range(4))  # embeddings + 3 layers


@pytest.mark.parametrize("pooler_type", ["cls", "cls_before_pooler"])
def test_cls_poolers_take_first_token(pooler_type, layers):
    assert torch.equal(pool(pooler_type, MASK, layers[-1], layers), layers[-1][:, 0])


def test_avg_ignores_padding(layers):
    expected = _mean_of_real_tokens(layers[-1])
    torch.testing.assert_close(pool("avg", MASK, layers[-1], layers), expected)
    # Changing padded positions must not change the result.
    noisy = layers[-1].clone()
    noisy[1, 3:] = 100.0
    torch.testing.assert_close(pool("avg", MASK, noisy, layers), expected)


def test_avg_top2_averages_last_two_layers(layers):
    expected = _mean_of_real_tokens((layers[-1] + layers[-2]) / 2)
    torch.testing.assert_close(pool("avg_top2", MASK, layers[-1], layers), expected)


def test_avg_first_last_uses_first_transformer_layer_not_embeddings(layers):
    expected = _mean_of_real_tokens((layers[1] + layers[-1]) / 2)
    torch.testing.assert_close(pool("avg_first_last", MASK, layers[-1], layers), expected)


def test_hand_computed_average():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])  # (1, 3, 2), last token is padding
    mask = torch.tensor([[1, 1, 0]])
    assert pool("avg", mask, hidden).tolist() == [[2.0, 3.0]]
    assert masked_mean(hidden, mask).tolist() == [[2.0, 3.0]]


def test_multi_layer_pooler_without_hidden_states_is_an_error(layers):
    with pytest.raises(ValueError, match="hidden states"):
        pool("avg_top2", MASK, layers[-1], None)


def test_unknown_pooler_is_an_error(layers):
    with pytest.raises(ValueError, match="unknown pooler"):
        pool("max", MASK, layers[-1], layers)


def test_mlp_head_is_linear_then_tanh():
    head = MLPHead(H)
    features = torch.randn(B, H)
    expected = torch.tanh(features @ head.dense.weight.T + head.dense.bias)
    torch.testing.assert_close(head(features), expected)
    assert torch.all(head.dense.bias == 0)


@pytest.mark.parametrize(
    ("pooler_type", "mlp_only_train", "training", "expected"),
    [
        ("cls", False, True, True),
        ("cls", False, False, True),
        ("cls", True, True, True),
        ("cls", True, False, False),
        ("avg", False, True, False),
        ("cls_before_pooler", False, True, False),
    ],
)
def test_when_the_mlp_is_used(pooler_type, mlp_only_train, training, expected):
    assert uses_mlp(pooler_type, mlp_only_train, training) is expected
