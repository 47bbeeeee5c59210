"""The batch contract: the tensors the collators make and `SimCSE` reads, and the training mode they imply.

A training batch holds k texts per example in SimCSE's (bs, num_sent, len) layout, and its shapes tell the mode, as
the columns of the data do (`cse.data.columns`): k = 1 is unsupervised SimCSE, k = 2 pairs, k = 3 triplets (anchor,
positive, hard negative), k = 2 with a `score` scored pairs. An evaluation batch holds 2B sentences of B scored pairs.

The checks read shapes only, never values: reading a value of a GPU tensor makes the host wait for the device.
"""

from collections.abc import Mapping
from typing import Literal, TypedDict

from torch import Tensor

Mode = Literal["unsupervised", "pairs", "triplets", "scored"]
TOKEN_KEYS = ("input_ids", "attention_mask", "token_type_ids")  # what the encoder takes; token_type_ids optional
MLM_KEYS = ("mlm_input_ids", "mlm_labels")
MODES_BY_TEXTS: dict[int, Mode] = {1: "unsupervised", 2: "pairs", 3: "triplets"}
# Unsupervised SimCSE encodes each sentence twice, the two views differing only by dropout noise (SimCSE §3).
UNSUPERVISED_VIEWS = 2


class _Tokens(TypedDict):
    input_ids: Tensor
    attention_mask: Tensor


class TrainingBatch(_Tokens, total=False):
    """What `ExampleCollator` makes and `SimCSE.training_step` reads; B examples of k texts, padded to L tokens.

    - `input_ids`, `attention_mask`, `token_type_ids` (the last only if the tokenizer makes it): (B, k, L) int64,
      view 0 the anchor (or first sentence), 1 the positive (or second sentence), 2 the hard negative;
    - `score`: (B,) float32, the gold similarity of each pair; scored pairs only, so k = 2;
    - `mlm_input_ids`, `mlm_labels`: (B, k', L) int64 with k' = `encoded_views(k)`, the masked copy of every view
      the encoder sees and its labels, -100 where no token was masked; only for the auxiliary MLM loss.
    - `word_ids`: (B, k, L) int64, each token's word index, -1 for special tokens and padding; only for TSDAE's word
      deletion (`model.objective: tsdae`).
    """

    token_type_ids: Tensor
    score: Tensor
    mlm_input_ids: Tensor
    mlm_labels: Tensor
    word_ids: Tensor


class _ScoredTokens(_Tokens):
    score: Tensor


class EvaluationBatch(_ScoredTokens, total=False):
    """What `PairCollator` makes and `SimCSE` validates and tests on: B scored pairs as ONE batch of 2B sentences.

    - `input_ids`, `attention_mask`, `token_type_ids` (the last optional): (2B, L) int64, rows [0, B) the first
      sentence of each pair, [B, 2B) the second;
    - `score`: (B,) float32, the gold similarity of each pair.
    """

    token_type_ids: Tensor


class BatchError(ValueError):
    """A batch that breaks the contract: names the tensor, its shape and the shape the contract wants."""


def mode_for(texts: int, scored: bool) -> Mode:
    """The training mode of examples of `texts` texts (1, 2 or 3), with a gold score or not (scored: 2 texts)."""
    return "scored" if scored else MODES_BY_TEXTS[texts]


def encoded_views(texts: int) -> int:
    """Views per example the encoder sees in training: each text once, a single sentence twice (unsupervised)."""
    return UNSUPERVISED_VIEWS if texts == 1 else texts


def token_tensors(batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The encoder's inputs of a batch: its tensors under `TOKEN_KEYS`, in that order."""
    return {key: batch[key] for key in TOKEN_KEYS if key in batch}


def batch_mode(batch: Mapping[str, Tensor]) -> Mode:
    """The training mode of a `TrainingBatch`, told by its shapes, which are checked against the contract.

    Raises:
        BatchError: a missing or unknown key, or a tensor of the wrong shape (e.g. k = 4, a score with k != 2).
    """
    _check_keys(batch, TrainingBatch, "a training")
    ids = batch["input_ids"]
    if ids.ndim != 3 or ids.size(1) not in MODES_BY_TEXTS:
        raise BatchError(
            f"input_ids has shape {tuple(ids.shape)}; a training batch holds (B, k, L) token ids, k = 1 "
            "(unsupervised), 2 (pairs) or 3 (triplets) texts per example"
        )
    size, texts, length = ids.shape
    _check_shapes(batch, TOKEN_KEYS, (size, texts, length), "(B, k, L) like input_ids")
    if "score" in batch:
        if texts != 2:
            raise BatchError(f"score is given with k = {texts} texts per example; scored pairs have k = 2")
        _check_shapes(batch, ("score",), (size,), "(B,), one per example")
    present = [key for key in MLM_KEYS if key in batch]
    if present and len(present) != len(MLM_KEYS):
        raise BatchError(f"{present[0]} without {(set(MLM_KEYS) - set(present)).pop()}; the MLM loss needs both")
    _check_shapes(batch, MLM_KEYS, (size, encoded_views(texts), length), "(B, k', L), k' = 2 if k = 1 else k")
    _check_shapes(batch, ("word_ids",), (size, texts, length), "(B, k, L) like input_ids")
    return mode_for(texts, "score" in batch)


def check_evaluation_batch(batch: Mapping[str, Tensor]) -> None:
    """Check an `EvaluationBatch`'s keys and shapes: (2B, L) token tensors and a (B,) score.

    Raises:
        BatchError: a missing or unknown key, or a tensor of the wrong shape.
    """
    _check_keys(batch, EvaluationBatch, "an evaluation")
    ids = batch["input_ids"]
    if ids.ndim != 2 or ids.size(0) % 2:
        raise BatchError(
            f"input_ids has shape {tuple(ids.shape)}; an evaluation batch holds (2B, L) token ids, the first "
            "sentences of B pairs then the second ones"
        )
    _check_shapes(batch, TOKEN_KEYS, tuple(ids.shape), "(2B, L) like input_ids")
    _check_shapes(batch, ("score",), (ids.size(0) // 2,), "(B,), one per pair of the (2B, L) input_ids")


def _check_keys(batch: Mapping[str, Tensor], contract: type, name: str) -> None:
    missing = sorted(contract.__required_keys__ - batch.keys())
    unknown = sorted(batch.keys() - contract.__required_keys__ - contract.__optional_keys__)
    if missing or unknown:
        problem = f"no {', '.join(missing)}" if missing else f"unknown keys {', '.join(unknown)}"
        keys = ", ".join([*sorted(contract.__required_keys__), *sorted(contract.__optional_keys__)])
        raise BatchError(f"{name} batch has {problem}; its keys are {keys} (see cse.models.batch)")


def _check_shapes(batch: Mapping[str, Tensor], keys: tuple[str, ...], shape: tuple[int, ...], wanted: str) -> None:
    for key in keys:
        if key in batch and tuple(batch[key].shape) != shape:
            raise BatchError(f"{key} has shape {tuple(batch[key].shape)}, not {shape} = {wanted}")
