import pytest
import torch

from cse.errors import InputError
from cse.evaluation.transfer import check_folds, evaluate_transfer_task, pair_features
from cse.evaluation.transfer_tasks import LabelledSentences, read_transfer_task

WORDS = ["the", "man", "woman", "girl", "boy", "dog", "is", "are", "in", "on", "park", "playing", "guitar", "a"]


def _bag_of_words(sentences: list[str]) -> torch.Tensor:
    """(N, 14) word counts: a sentence encoder that makes the test tasks learnable."""
    return torch.tensor([[sentence.split().count(word) for word in WORDS] for sentence in sentences], dtype=torch.float)


def test_pair_features_are_absolute_difference_and_product():
    u, v = torch.tensor([[1.0, -2.0, 3.0]]), torch.tensor([[4.0, 1.0, -1.0]])
    assert pair_features(u, v).tolist() == [[3.0, 3.0, 4.0, 4.0, -2.0, -3.0]]


@pytest.mark.parametrize(
    ("task", "ndev", "ntest"),
    [("MR", 60, 60), ("SST2", 20, 20), ("TREC", 60, 24), ("MRPC", 50, 20)],
)
def test_learnable_tasks_are_learned(senteval_files, task, ndev, ntest):
    embedded = []

    def embed(sentences: list[str]) -> torch.Tensor:
        embedded.extend(sentences)
        return _bag_of_words(sentences)

    splits = read_transfer_task(senteval_files.root, task)
    result = evaluate_transfer_task(task, splits, embed, folds=3)
    assert (result.ndev, result.ntest) == (ndev, ntest)
    assert result.acc >= 90.0 and result.devacc >= 90.0
    assert len(embedded) == sum(len(data.labels) * (2 if task == "MRPC" else 1) for data in splits.values())


def test_too_few_examples_for_the_folds_is_an_input_error(senteval_files):
    check_folds("MR", read_transfer_task(senteval_files.root, "MR"), folds=10)  # 60 examples: enough
    with pytest.raises(InputError, match=r"MR: 60 training examples, too few for 40-fold cross-validation \(need 80\)"):
        check_folds("MR", read_transfer_task(senteval_files.root, "MR"), folds=40)
    small = {"train": LabelledSentences(["a"] * 9, [0, 1] * 4 + [0]), "test": LabelledSentences(["b"], [0])}
    with pytest.raises(InputError, match=r"TREC: 9 training examples, too few for 10-fold"):
        check_folds("TREC", small, folds=10)
    check_folds("SST2", {}, folds=10)
