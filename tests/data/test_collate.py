import pytest
import torch
from sentences import tokenized_rows
from transformers import AutoTokenizer

from cse.data.collate import ExampleCollator, PairCollator


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _rows(tokenizer, texts: list[list[str]], scores=None) -> list[dict]:
    rows = tokenized_rows(tokenizer, texts)
    if scores is not None:  # scored pairs carry their gold score
        for row, score in zip(rows, scores, strict=True):
            row["score"] = score
    return rows


def test_triplets_are_padded_together_in_reference_layout(tokenizer):
    texts = [["a man", "the dog is in the park", "a"], ["girl", "boy", "the woman is playing guitar"]]
    batch = ExampleCollator(tokenizer)(_rows(tokenizer, texts))
    longest = max(len(tokenizer(text)["input_ids"]) for views in texts for text in views)
    assert batch["input_ids"].shape == (2, 3, longest)
    for i, views in enumerate(texts):
        for k, text in enumerate(views):
            ids = tokenizer(text)["input_ids"]
            assert batch["input_ids"][i, k, : len(ids)].tolist() == ids
            assert batch["attention_mask"][i, k].sum() == len(ids)


def test_scores_are_kept(tokenizer):
    batch = ExampleCollator(tokenizer)(_rows(tokenizer, [["a", "b"], ["c", "d"]], scores=[0.25, 1.0]))
    assert batch["score"].tolist() == [0.25, 1.0]


def test_mlm_masking_statistics(tokenizer):
    torch.manual_seed(0)
    texts = [["the man is playing a guitar in the park", "the woman is on the dog"]] * 400
    rows = _rows(tokenizer, texts)
    batch = ExampleCollator(tokenizer, mlm_probability=0.15)(rows)
    original, masked, labels = batch["input_ids"], batch["mlm_input_ids"], batch["mlm_labels"]
    special = torch.isin(original, torch.tensor(tokenizer.all_special_ids))
    chosen = labels != -100
    assert not (chosen & special).any(), "special and padding tokens are never masked"
    assert torch.equal(labels[chosen], original[chosen]) and torch.equal(masked[~chosen], original[~chosen])
    share = chosen.sum() / (~special).sum()
    assert share.item() == pytest.approx(0.15, abs=0.01)
    replaced_by_mask = (masked[chosen] == tokenizer.mask_token_id).float().mean().item()
    kept = (masked[chosen] == original[chosen]).float().mean().item()
    assert replaced_by_mask == pytest.approx(0.8, abs=0.03)
    assert kept == pytest.approx(0.1 + 0.1 / len(tokenizer), abs=0.03)  # 10% kept (+ random picks of the same token)


def test_single_sentences_get_two_independent_masks(tokenizer):
    torch.manual_seed(0)
    batch = ExampleCollator(tokenizer, mlm_probability=0.5)(
        _rows(tokenizer, [["the man is playing a guitar in the park"]] * 8)
    )
    assert batch["input_ids"].shape[1] == 1 and batch["mlm_input_ids"].shape[1] == 2
    assert not torch.equal(batch["mlm_labels"][:, 0], batch["mlm_labels"][:, 1])


@pytest.mark.parametrize(("multiple", "max_length"), [(8, None), (None, 24), (8, 21)])
def test_padding_to_a_multiple_or_to_a_fixed_length(tokenizer, multiple, max_length):
    texts = [["a man", "the dog is in the park"], ["girl", "boy"]]
    batch = ExampleCollator(tokenizer, pad_to_multiple_of=multiple, max_length=max_length)(_rows(tokenizer, texts))
    longest = max(len(tokenizer(text)["input_ids"]) for views in texts for text in views)
    length = longest if max_length is None else max_length
    if multiple is not None:
        length = -(-length // multiple) * multiple  # rounded up
    assert batch["input_ids"].shape == (2, 2, length)
    assert batch["attention_mask"].sum().item() == sum(len(tokenizer(t)["input_ids"]) for v in texts for t in v)
    assert (batch["input_ids"][batch["attention_mask"] == 0] == tokenizer.pad_token_id).all()


def test_pairs_are_padded_to_a_multiple(tokenizer):
    rows = [{"sentence1": tokenizer("a man"), "sentence2": tokenizer("the dog is in the park"), "score": 1.0}]
    batch = PairCollator(tokenizer, pad_to_multiple_of=8)(rows)
    assert batch["input_ids"].shape == (2, 8)
