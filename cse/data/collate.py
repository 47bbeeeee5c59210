"""Batch collation with dynamic padding (each batch padded to its own longest sentence)."""

import torch
from torch import Tensor
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase


class PairCollator:
    """Pads scored pairs into ONE batch of 2B sentences: rows [0, B) are sentence1, [B, 2B) sentence2.

    Returns `input_ids`/`attention_mask` (and `token_type_ids` when the tokenizer makes them) of shape (2B, L)
    and `score` of shape (B,).
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.pad = DataCollatorWithPadding(tokenizer, return_tensors="pt")

    def __call__(self, rows: list[dict]) -> dict[str, Tensor]:
        batch = self.pad([row["sentence1"] for row in rows] + [row["sentence2"] for row in rows])
        batch["score"] = torch.tensor([row["score"] for row in rows], dtype=torch.float32)
        return dict(batch)
