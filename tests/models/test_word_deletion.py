"""TSDAE's word deletion against its definition (sentence-transformers' `DenoisingAutoEncoderDataset.delete`): each
word kept when a uniform draw exceeds the ratio, at least one word kept, order and special tokens kept."""

import pytest
import torch
from sentences import tokenized_rows
from transformers import AutoTokenizer

from cse.data.collate import ExampleCollator
from cse.models.word_deletion import NO_WORD, delete_words


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _kept_words(word_ids: list[int], ratio: float, draws: int) -> torch.Tensor:
    """(draws, L) the word id of each kept token (NO_WORD: special), padding -2, for `draws` copies of one sentence."""
    ids = torch.tensor([word_ids] * draws)
    tokens = {"input_ids": ids + 10, "attention_mask": torch.ones_like(ids)}
    damaged = delete_words(tokens, ids, ratio)
    return (damaged["input_ids"] - 10).masked_fill(damaged["attention_mask"] == 0, -2)


@pytest.mark.parametrize(("words", "ratio"), [(3, 0.6), (10, 0.6), (4, 0.9), (5, 0.0)])
def test_expected_kept_words_follow_the_formula_with_at_least_one_kept(words, ratio):
    torch.manual_seed(0)
    draws = 20_000
    kept = _kept_words([NO_WORD, *range(words), NO_WORD], ratio, draws)  # [CLS] w0 ... w(n-1) [SEP]
    counts = (kept >= 0).sum(dim=1).double()
    # E[kept] = n (1 - r) + r^n: each word survives with 1 - r; when none does (probability r^n) one is put back.
    expected = words * (1 - ratio) + ratio**words
    assert counts.mean().item() == pytest.approx(expected, abs=4 * counts.std().item() / draws**0.5 + 1e-9)
    assert counts.min().item() >= 1, "at least one word is kept"
    for row in kept[:500].tolist():
        row = [word for word in row if word != -2]
        assert row[0] == row[-1] == NO_WORD, "[CLS] first and [SEP] last"
        assert row[1:-1] == sorted(set(row[1:-1])), "kept words in their order, each once"


def test_the_kept_word_when_none_survives_is_uniform():
    torch.manual_seed(0)
    kept = _kept_words([NO_WORD, 0, 1, 2, 3, NO_WORD], 0.999999, 4000)
    assert ((kept >= 0).sum(dim=1) == 1).all()
    counts = torch.bincount(kept[:, 1], minlength=4).double()
    assert (counts / 4000 - 0.25).abs().max().item() < 0.03


def test_damaged_sentence_is_the_tokenized_text_of_the_kept_words(tokenizer):
    """Whole words go, with every subword piece (`zqx` is three pieces here); what is left tokenizes like the text of
    the kept words, [CLS] and [SEP] included: an independent tokenization, not the deletion's token arithmetic."""
    torch.manual_seed(0)
    texts = ["the man zqx is playing a guitar in the park", "a girl is on the dog", "zqx"] * 30
    rows = tokenized_rows(tokenizer, [[text] for text in texts])
    for row, text in zip(rows, texts, strict=True):
        row["word_ids"] = [[NO_WORD if word is None else word for word in tokenizer(text).word_ids()]]
    batch = ExampleCollator(tokenizer, pad_to_multiple_of=8, word_ids=True)(rows)
    assert batch["word_ids"].shape == batch["input_ids"].shape == (90, 1, 16)
    tokens = {key: batch[key][:, 0] for key in ("input_ids", "attention_mask", "token_type_ids")}
    damaged = delete_words(tokens, batch["word_ids"][:, 0], 0.6, tokenizer.pad_token_id)
    assert damaged["token_type_ids"].eq(0).all()
    for index, text in enumerate(texts):
        mask = damaged["attention_mask"][index].bool()
        assert (damaged["input_ids"][index][~mask] == tokenizer.pad_token_id).all()
        ids = damaged["input_ids"][index][mask].tolist()
        pieces = tokenizer.convert_ids_to_tokens(ids[1:-1])
        kept = " ".join(pieces).replace(" ##", "").split()  # the kept words, read back from their pieces
        assert ids == tokenizer(" ".join(kept))["input_ids"]
        remaining = iter(text.split())
        assert kept and all(word in remaining for word in kept), "the kept words are a subsequence of the words"
