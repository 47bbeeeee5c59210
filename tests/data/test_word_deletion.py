"""TSDAE's word deletion against its definition (sentence-transformers' `DenoisingAutoEncoderDataset.delete`): each
word kept when a uniform draw exceeds the ratio, at least one word kept, order and special tokens kept."""

import pytest
import torch
from transformers import AutoTokenizer

from cse.data.collate import ExampleCollator
from cse.data.word_deletion import NO_WORD, kept_positions


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _row(tokenizer, text: str) -> dict:
    encoded = tokenizer(text)
    word_ids = [NO_WORD if word is None else word for word in encoded.word_ids()]
    return {key: [encoded[key]] for key in encoded} | {"word_ids": [word_ids]}


@pytest.mark.parametrize(("words", "ratio"), [(3, 0.6), (10, 0.6), (4, 0.9), (5, 0.0)])
def test_expected_kept_words_follow_the_formula_with_at_least_one_kept(words, ratio):
    torch.manual_seed(0)
    word_ids = [NO_WORD, *range(words), NO_WORD]  # [CLS] w0 ... w(n-1) [SEP]
    draws = 20_000
    kept = [kept_positions(word_ids, ratio) for _ in range(draws)]
    counts = torch.tensor([len(positions) - 2 for positions in kept], dtype=torch.float64)
    # E[kept] = n (1 - r) + r^n: each word survives with 1 - r; when none does (probability r^n) one is put back.
    expected = words * (1 - ratio) + ratio**words
    assert counts.mean().item() == pytest.approx(expected, abs=4 * counts.std().item() / draws**0.5 + 1e-9)
    assert counts.min().item() >= 1, "at least one word is kept"
    for positions in kept[:200]:
        assert positions == sorted(positions) and positions[0] == 0 and positions[-1] == words + 1


def test_the_kept_word_when_none_survives_is_uniform():
    torch.manual_seed(0)
    word_ids = [NO_WORD, 0, 1, 2, 3, NO_WORD]
    alone = [kept_positions(word_ids, 0.999999) for _ in range(4000)]
    assert all(len(positions) == 3 for positions in alone)
    counts = torch.bincount(torch.tensor([positions[1] for positions in alone]) - 1, minlength=4).double()
    assert (counts / 4000 - 0.25).abs().max().item() < 0.03


def test_damaged_sentence_is_the_tokenized_text_of_the_kept_words(tokenizer):
    """Whole words go, with every subword piece (`zqx` is three pieces here); what is left tokenizes like the text of
    the kept words, [CLS] and [SEP] included: an independent tokenization, not the collator's token arithmetic."""
    torch.manual_seed(0)
    texts = ["the man zqx is playing a guitar in the park", "a girl is on the dog", "zqx"]
    rows = [_row(tokenizer, text) for text in texts] * 30
    batch = ExampleCollator(tokenizer, deletion_ratio=0.6)(rows)
    assert batch["input_ids"].shape[:2] == (90, 1)
    assert batch["noisy_input_ids"].shape[0] == 90 and batch["noisy_token_type_ids"].eq(0).all()
    for index, text in enumerate(texts * 30):
        ids = batch["noisy_input_ids"][index][batch["noisy_attention_mask"][index].bool()].tolist()
        words = text.split()
        pieces = tokenizer.convert_ids_to_tokens(ids[1:-1])
        kept = " ".join(pieces).replace(" ##", "").split()  # the kept words, read back from their pieces
        assert ids == tokenizer(" ".join(kept))["input_ids"]
        remaining = iter(words)
        assert kept and all(word in remaining for word in kept), "the kept words are a subsequence of the words"


def test_without_a_deletion_ratio_the_batch_has_no_damaged_copy(tokenizer):
    batch = ExampleCollator(tokenizer)([_row(tokenizer, "a man")])
    assert not any(key.startswith("noisy_") for key in batch)
