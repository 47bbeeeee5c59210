"""The batch contract: what the collators make satisfies it in every mode, and its mode is the columns' mode."""

import pytest
import torch
from sentences import TRIPLETS, tokenized_rows
from transformers import AutoTokenizer

from cse.data.collate import ExampleCollator, PairCollator
from cse.data.columns import ColumnMapping
from cse.models.batch import (
    MLM_KEYS,
    TOKEN_KEYS,
    BatchError,
    EvaluationBatch,
    TrainingBatch,
    batch_mode,
    check_evaluation_batch,
    encoded_views,
    token_tensors,
)

# mode -> (canonical columns, texts per example k)
MODES = {
    "unsupervised": (("sent0",), 1),
    "pairs": (("sent0", "sent1"), 2),
    "triplets": (("sent0", "sent1", "hard_neg"), 3),
    "scored": (("sent0", "sent1", "score"), 2),
}


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _rows(tokenizer, mode: str) -> list[dict]:
    columns, texts = MODES[mode]
    rows = tokenized_rows(tokenizer, [triplet[:texts] for triplet in TRIPLETS])
    if "score" in columns:
        for index, row in enumerate(rows):
            row["score"] = index / len(rows)
    return rows


@pytest.mark.parametrize("mlm", [False, True], ids=["plain", "mlm"])
@pytest.mark.parametrize("mode", MODES)
def test_the_example_collator_makes_a_training_batch_of_the_columns_mode(tokenizer, mode, mlm):
    columns, texts = MODES[mode]
    batch = ExampleCollator(tokenizer, mlm_probability=0.5 if mlm else None)(_rows(tokenizer, mode))
    size, length = len(TRIPLETS), batch["input_ids"].size(-1)
    assert type(batch) is dict  # a TypedDict is a plain dict: Lightning moves, pins and pickles it as one
    expected_keys = {*TOKEN_KEYS, *(["score"] if mode == "scored" else []), *(MLM_KEYS if mlm else [])}
    assert batch.keys() == expected_keys
    assert batch.keys() <= TrainingBatch.__required_keys__ | TrainingBatch.__optional_keys__
    for key in TOKEN_KEYS:
        assert batch[key].dtype == torch.int64 and batch[key].shape == (size, texts, length)
    if mode == "scored":
        assert batch["score"].dtype == torch.float32 and batch["score"].shape == (size,)
    if mlm:
        for key in MLM_KEYS:  # a single sentence is masked twice, once per training view
            assert batch[key].dtype == torch.int64 and batch[key].shape == (size, encoded_views(texts), length)
    assert batch_mode(batch) == ColumnMapping({name: name for name in columns}).mode == mode


def test_the_pair_collator_makes_an_evaluation_batch(tokenizer):
    rows = [
        {"sentence1": tokenizer(first), "sentence2": tokenizer(second), "score": score}
        for first, second, score in [("a man", "the man is playing", 0.8), ("a dog", "a girl", 0.1)]
    ]
    batch = PairCollator(tokenizer)(rows)
    assert type(batch) is dict and batch.keys() == {*TOKEN_KEYS, "score"}
    assert batch.keys() <= EvaluationBatch.__required_keys__ | EvaluationBatch.__optional_keys__
    for key in TOKEN_KEYS:
        assert batch[key].dtype == torch.int64 and batch[key].shape == (4, batch["input_ids"].size(1))
    assert batch["score"].dtype == torch.float32 and batch["score"].tolist() == pytest.approx([0.8, 0.1])
    check_evaluation_batch(batch)


def _training(texts: int, size: int = 3, length: int = 5, **extra: torch.Tensor) -> TrainingBatch:
    ids = torch.zeros(size, texts, length, dtype=torch.long)  # (B, k, L)
    return TrainingBatch(input_ids=ids, attention_mask=torch.ones_like(ids), **extra)


@pytest.mark.parametrize(
    ("batch", "mode"),
    [
        (_training(1), "unsupervised"),
        (_training(2), "pairs"),
        (_training(3), "triplets"),
        (_training(2, score=torch.zeros(3)), "scored"),
        (_training(2, token_type_ids=torch.zeros(3, 2, 5, dtype=torch.long)), "pairs"),
        (_training(1, mlm_input_ids=torch.zeros(3, 2, 5), mlm_labels=torch.zeros(3, 2, 5)), "unsupervised"),
        (_training(3, mlm_input_ids=torch.zeros(3, 3, 5), mlm_labels=torch.zeros(3, 3, 5)), "triplets"),
    ],
)
def test_batch_mode_of_hand_written_batches(batch, mode):
    assert batch_mode(batch) == mode


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        (_training(4), r"input_ids has shape \(3, 4, 5\); a training batch holds \(B, k, L\) .* k = 1"),
        (_training(0), r"input_ids has shape \(3, 0, 5\)"),
        ({"input_ids": torch.zeros(3, 5), "attention_mask": torch.zeros(3, 5)}, r"input_ids has shape \(3, 5\)"),
        ({"input_ids": torch.zeros(3, 2, 5)}, r"a training batch has no attention_mask; its keys are"),
        (_training(2, scores=torch.zeros(3)), r"a training batch has unknown keys scores; its keys are"),
        (_training(3, score=torch.zeros(3)), r"score is given with k = 3 texts per example; scored pairs have k = 2"),
        (_training(1, score=torch.zeros(3)), r"score is given with k = 1 texts"),
        (_training(2, score=torch.zeros(4)), r"score has shape \(4,\), not \(3,\) = \(B,\)"),
        (_training(2, score=torch.zeros(3, 1)), r"score has shape \(3, 1\), not \(3,\)"),
        (
            {"input_ids": torch.zeros(3, 2, 5), "attention_mask": torch.zeros(3, 2, 6)},
            r"attention_mask has shape \(3, 2, 6\), not \(3, 2, 5\) = \(B, k, L\) like input_ids",
        ),
        (_training(2, token_type_ids=torch.zeros(3, 5)), r"token_type_ids has shape \(3, 5\)"),
        (_training(2, mlm_input_ids=torch.zeros(3, 2, 5)), r"mlm_input_ids without mlm_labels"),
        (_training(1, mlm_input_ids=torch.zeros(3, 1, 5), mlm_labels=torch.zeros(3, 1, 5)), r"not \(3, 2, 5\)"),
        (_training(2, mlm_input_ids=torch.zeros(3, 2, 5), mlm_labels=torch.zeros(3, 2, 4)), r"mlm_labels has shape"),
    ],
)
def test_batch_mode_refuses_a_batch_that_breaks_the_contract(batch, message):
    with pytest.raises(BatchError, match=message):
        batch_mode(batch)


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        (_training(2, score=torch.zeros(3)), r"input_ids has shape \(3, 2, 5\); an evaluation batch holds \(2B, L\)"),
        ({"input_ids": torch.zeros(3, 5), "attention_mask": torch.zeros(3, 5), "score": torch.zeros(1)}, r"\(3, 5\)"),
        ({"input_ids": torch.zeros(4, 5), "attention_mask": torch.zeros(4, 5)}, r"an evaluation batch has no score"),
        (
            {"input_ids": torch.zeros(4, 5), "attention_mask": torch.zeros(4, 5), "score": torch.zeros(4)},
            r"score has shape \(4,\), not \(2,\) = \(B,\), one per pair",
        ),
    ],
)
def test_check_evaluation_batch_refuses_a_batch_that_breaks_the_contract(batch, message):
    with pytest.raises(BatchError, match=message):
        check_evaluation_batch(batch)


def test_token_tensors_are_the_encoder_inputs_only():
    batch = _training(2, score=torch.zeros(3))
    assert list(token_tensors(batch)) == ["input_ids", "attention_mask"]
    assert token_tensors(batch)["input_ids"] is batch["input_ids"]
