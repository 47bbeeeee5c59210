"""Batch collation with dynamic padding (each batch padded to its own longest sentence)."""

from collections.abc import Callable

import torch
from transformers import DataCollatorForLanguageModeling, DataCollatorWithPadding, PreTrainedTokenizerBase

from cse.models.batch import TOKEN_KEYS, EvaluationBatch, TrainingBatch, encoded_views, token_tensors
from cse.models.word_deletion import NO_WORD


class ExampleCollator:
    """Rows of k tokenized texts (k = 1, 2, 3) -> one padded `TrainingBatch`, SimCSE's (bs, num_sent, len) layout.

    Returns `input_ids`/`attention_mask` (and `token_type_ids` when the tokenizer makes them) of shape (B, k, L),
    `score` (B,) for scored pairs, and with `mlm_probability` the masked copy `mlm_input_ids` (B, k', L) with
    `mlm_labels` (B, k', L), -100 where no token was masked (BERT's 80/10/10 rule, transformers' implementation);
    k' = k, or 2 for single sentences (both training copies are masked). With `word_ids` (rows that carry them),
    also `word_ids` (B, k, L): each token's word index, `NO_WORD` for special tokens and padding (TSDAE's word
    deletion, `cse.models.word_deletion`). See `cse.models.batch`.

    Args:
        tokenizer: the model's tokenizer (its pad token and padding side).
        mlm_probability: share of tokens to mask for the MLM auxiliary loss; None masks nothing.
        pad_to_multiple_of: L is rounded up to a multiple of this (8: whole tensor-core tiles in fp16/bf16).
        max_length: pad every batch to exactly this L (fixed shapes for `torch.compile`); None pads each batch to its
            longest text.
        word_repetition: maps rows of one sentence to (sentence, positive) rows first, e.g. ESimCSE's
            `cse.data.word_repetition.WordRepetition`; None keeps the rows.
        word_ids: add the rows' word ids to the batch.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        mlm_probability: float | None = None,
        pad_to_multiple_of: int | None = None,
        max_length: int | None = None,
        word_repetition: Callable[[list[dict]], list[dict]] | None = None,
        word_ids: bool = False,
    ) -> None:
        self.pad = _padder(tokenizer, pad_to_multiple_of, max_length)
        self.word_repetition = word_repetition
        self.word_ids = word_ids
        self.masker = (
            DataCollatorForLanguageModeling(tokenizer, mlm_probability=mlm_probability) if mlm_probability else None
        )

    def __call__(self, rows: list[dict]) -> TrainingBatch:
        if self.word_repetition is not None:
            rows = self.word_repetition(rows)
        views = len(rows[0]["input_ids"])
        token_keys = [key for key in TOKEN_KEYS if key in rows[0]]
        flat = self.pad([{key: row[key][view] for key in token_keys} for row in rows for view in range(views)])
        batch = {key: tensor.view(len(rows), views, -1) for key, tensor in flat.items()}  # (Bk, L) -> (B, k, L)
        if "score" in rows[0]:
            batch["score"] = torch.tensor([row["score"] for row in rows], dtype=torch.float32)
        if self.masker is not None:
            # A single sentence is encoded twice in training: mask both copies independently, as SimCSE does.
            copies = encoded_views(views) // views  # 2 for single sentences, else 1
            source = flat["input_ids"].repeat_interleave(copies, dim=0)  # (Bk, L) -> (B·k', L)
            masked, labels = self.masker.torch_mask_tokens(source.clone())
            batch["mlm_input_ids"] = masked.view(len(rows), -1, source.size(-1))  # (B·k', L) -> (B, k', L)
            batch["mlm_labels"] = labels.view(len(rows), -1, source.size(-1))
        if self.word_ids:
            words = torch.full_like(flat["input_ids"], NO_WORD)  # (Bk, L), padding included
            for index, ids in enumerate(row["word_ids"][view] for row in rows for view in range(views)):
                words[index, : len(ids)] = torch.tensor(ids)
            batch["word_ids"] = words.view(len(rows), views, -1)  # (Bk, L) -> (B, k, L)
        return TrainingBatch(**batch)


class PairCollator:
    """Pads scored pairs into ONE `EvaluationBatch` of 2B sentences: rows [0, B) are sentence1, [B, 2B) sentence2.

    Returns `input_ids`/`attention_mask` (and `token_type_ids` when the tokenizer makes them) of shape (2B, L)
    and `score` of shape (B,). L is the longest sentence, rounded up to a multiple of `pad_to_multiple_of`.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, pad_to_multiple_of: int | None = None) -> None:
        self.pad = _padder(tokenizer, pad_to_multiple_of)

    def __call__(self, rows: list[dict]) -> EvaluationBatch:
        padded = self.pad([row["sentence1"] for row in rows] + [row["sentence2"] for row in rows])  # (2B, L) each
        score = torch.tensor([row["score"] for row in rows], dtype=torch.float32)  # (B,)
        return EvaluationBatch(**token_tensors(padded), score=score)


def _padder(
    tokenizer: PreTrainedTokenizerBase, pad_to_multiple_of: int | None, max_length: int | None = None
) -> DataCollatorWithPadding:
    """transformers' padding collator: to the longest text, or to `max_length`, rounded up to `pad_to_multiple_of`."""
    padding = "longest" if max_length is None else "max_length"
    return DataCollatorWithPadding(
        tokenizer, padding=padding, max_length=max_length, pad_to_multiple_of=pad_to_multiple_of, return_tensors="pt"
    )
