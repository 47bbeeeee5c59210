"""Poolers that turn token states into one sentence vector, as in SimCSE (Gao et al., 2021, §6.3).

Pure torch: the encoder passes in the backbone's outputs, so these are testable without a model.
"""

from typing import Literal, get_args

from torch import Tensor, nn

PoolerType = Literal["cls", "cls_before_pooler", "avg", "avg_top2", "avg_first_last", "prompt"]
# The poolers that need no settings (`--pooler` of cse encode/eval); `prompt` needs its template (cse_config.json).
POOLER_TYPES: tuple[str, ...] = tuple(name for name in get_args(PoolerType) if name != "prompt")
POOLERS_NEEDING_ALL_LAYERS = ("avg_top2", "avg_first_last")


class MLPHead(nn.Module):
    """SimCSE's `MLPLayer`: Linear(H, H) + Tanh over the [CLS] vector, (B, H) -> (B, H)."""

    def __init__(self, hidden_size: int, initializer_range: float = 0.02) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.activation = nn.Tanh()
        # BERT's init for new layers, as SimCSE's `cls.init_weights()` applies to its MLP.
        nn.init.normal_(self.dense.weight, std=initializer_range)
        nn.init.zeros_(self.dense.bias)

    def forward(self, features: Tensor) -> Tensor:
        return self.activation(self.dense(features))


def masked_mean(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """Mean over real tokens: (B, L, H), (B, L) -> (B, H)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, L) -> (B, L, 1)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def pool(
    pooler_type: PoolerType,
    attention_mask: Tensor,
    last_hidden_state: Tensor,
    hidden_states: tuple[Tensor, ...] | None = None,
) -> Tensor:
    """One vector per sentence, (B, L, H) -> (B, H), exactly as SimCSE's `Pooler`.

    `cls` and `cls_before_pooler` both take the [CLS] state (the MLP on top of `cls` is applied by the
    encoder); `avg` averages the last layer; `avg_top2` the last two layers; `avg_first_last` the first
    transformer layer (hidden_states[1], not the embeddings) and the last, as the current SimCSE code.

    Args:
        pooler_type: one of `POOLER_TYPES`.
        attention_mask: (B, L), 1 for real tokens.
        last_hidden_state: (B, L, H).
        hidden_states: embeddings output plus every layer, each (B, L, H); needed by the two multi-layer poolers.
    """
    if pooler_type in ("cls", "cls_before_pooler"):
        return last_hidden_state[:, 0]  # (B, L, H) -> (B, H)
    if pooler_type == "avg":
        return masked_mean(last_hidden_state, attention_mask)
    if pooler_type in POOLERS_NEEDING_ALL_LAYERS:
        if hidden_states is None:
            raise ValueError(f"pooler {pooler_type!r} needs the hidden states of every layer")
        first, second = (hidden_states[1], hidden_states[-1]) if pooler_type == "avg_first_last" else hidden_states[-2:]
        return masked_mean((first + second) / 2.0, attention_mask)
    raise ValueError(f"unknown pooler {pooler_type!r}; choose one of {', '.join(POOLER_TYPES)}")


def uses_mlp(pooler_type: str, mlp_only_train: bool, training: bool) -> bool:
    """SimCSE applies the MLP to `cls` in training always, and at inference unless `mlp_only_train` (§3, Table 6);
    PromptBERT's `prompt` has one in training only, with `mlp_only_train` (the reference's unsupervised runs)."""
    if pooler_type == "prompt":
        return training and mlp_only_train
    return pooler_type == "cls" and (training or not mlp_only_train)


__all__ = ["MLPHead", "POOLER_TYPES", "PoolerType", "masked_mean", "pool", "uses_mlp"]


def inference_pooler(pooler_type: PoolerType, mlp_only_train: bool) -> PoolerType:
    """The pooler that gives the eval-mode embedding of an encoder trained with `pooler_type`: `cls` whose MLP was
    used in training only (SimCSE §3) embeds with the [CLS] state, `cls_before_pooler`."""
    return "cls_before_pooler" if pooler_type == "cls" and mlp_only_train else pooler_type
