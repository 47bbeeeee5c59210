"""Evaluate a transfer task: embed its sentences, then run SentEval's probe protocol for that task.

Which protocol each task uses is SentEval's (Conneau & Kiela, 2018): cross-validation for the four tasks without
splits, the dev split for SST2, cross-validation on train then the test split for TREC and MRPC.
"""

from dataclasses import dataclass

import torch
from torch import Tensor

from cse.errors import InputError
from cse.evaluation.probe import FOLDS, inner_kfold_probe, kfold_probe, split_probe
from cse.evaluation.sts import Embed
from cse.evaluation.transfer_tasks import TREC_CLASSES, LabelledPairs, LabelledSentences


@dataclass(frozen=True)
class TransferResult:
    """Accuracies ×100 (`acc` is the paper's number) and SentEval's counts of dev and test examples."""

    devacc: float
    acc: float
    ndev: int
    ntest: int


def pair_features(first: Tensor, second: Tensor) -> Tensor:
    """MRPC's pair features as SentEval's `mrpc.py` builds them: (N, H), (N, H) -> (N, 2H), [|u - v|, u * v]."""
    return torch.cat([(first - second).abs(), first * second], dim=-1)


def check_folds(task: str, splits: dict[str, LabelledSentences | LabelledPairs], folds: int) -> None:
    """Raise `InputError` when the task's training data is too small for its cross-validation."""
    if task == "SST2":  # chosen on the dev split, no cross-validation
        return
    # MR, CR, SUBJ, MPQA run a second cross-validation inside each (k-1)/k training part: 2k examples leave k.
    count, needed = (len(splits["all"].labels), 2 * folds) if "all" in splits else (len(splits["train"].labels), folds)
    if count < needed:
        raise InputError(
            f"{task}: {count} training examples, too few for {folds}-fold cross-validation (need {needed})"
        )


def evaluate_transfer_task(
    task: str, splits: dict[str, LabelledSentences | LabelledPairs], embed: Embed, folds: int = FOLDS
) -> TransferResult:
    """Accuracy of a logistic-regression probe on `embed`'s embeddings for one of `TRANSFER_TASKS`.

    Args:
        task: `MR`, `CR`, `SUBJ`, `MPQA`, `SST2`, `TREC` or `MRPC`.
        splits: the task's data as `read_transfer_task` returns it.
        embed: sentences -> (N, H) embeddings.
        folds: k of the cross-validations.
    """
    if task == "SST2":
        tensors = {name: (embed(data.sentences), torch.tensor(data.labels)) for name, data in splits.items()}
        result = split_probe(tensors, num_classes=2)
        return TransferResult(result.devacc, result.acc, len(splits["dev"].labels), len(splits["test"].labels))
    if task in ("TREC", "MRPC"):
        train, test = splits["train"], splits["test"]
        num_classes = len(TREC_CLASSES) if task == "TREC" else 2
        train_features, test_features = _features(train, embed), _features(test, embed)
        result = kfold_probe(
            train_features, torch.tensor(train.labels), test_features, torch.tensor(test.labels), num_classes, folds
        )
        return TransferResult(result.devacc, result.acc, len(train.labels), len(test.labels))
    data = splits["all"]  # MR, CR, SUBJ, MPQA
    result = inner_kfold_probe(_features(data, embed), torch.tensor(data.labels), 2, folds)
    return TransferResult(result.devacc, result.acc, len(data.labels), len(data.labels))


def _features(data: LabelledSentences | LabelledPairs, embed: Embed) -> Tensor:
    if isinstance(data, LabelledPairs):
        return pair_features(embed(data.sentence1), embed(data.sentence2))
    return embed(data.sentences)
