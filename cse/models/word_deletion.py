"""TSDAE's noise: delete a share of each sentence's words (Wang et al., 2021, §3; deletion ratio 0.6).

As sentence-transformers' `DenoisingAutoEncoderDataset.delete` (UKPLab/sentence-transformers,
`sentence_transformers/sentence_transformer/datasets/denoising_auto_encoder.py`): each word is kept when a uniform
draw exceeds the ratio (`np.random.rand(n) > del_ratio`), and when none is kept one word drawn uniformly is. The
words are the tokenizer's (its pre-tokenization: whitespace and punctuation for BERT, as NLTK's `word_tokenize` of
the reference), so deleting a word deletes all its subword pieces; special tokens ([CLS], [SEP]) stay. It runs in the
training step, on the device, drawing from torch's global generator as dropout does: the draws follow
`seed_everything`, and the checkpointed random state (`cse.callbacks.rng_state`) resumes them exactly (a collator
would draw one batch ahead of the step, as Lightning fetches it in advance).
"""

import torch
from torch import Tensor

NO_WORD = -1  # the word id of special tokens and padding (fast tokenizers' `word_ids()` gives None)


def delete_words(
    tokens: dict[str, Tensor], word_ids: Tensor, deletion_ratio: float, pad_token_id: int = 0
) -> dict[str, Tensor]:
    """The sentences with words deleted, left-aligned and padded to the same length L (no host synchronization).

    Args:
        tokens: (B, L) `input_ids`, `attention_mask` (and `token_type_ids`), right-padded.
        word_ids: (B, L) each token's word index in its sentence, `NO_WORD` for special tokens and padding.
        deletion_ratio: probability that a word is deleted; at least one word of each sentence is kept.
        pad_token_id: the id written after each damaged sentence.

    Returns:
        The same keys, (B, L): kept tokens first in their order, then padding (attention mask 0).
    """
    size, length = word_ids.shape
    columns = torch.arange(length, device=word_ids.device)
    words = word_ids.max(dim=1).values + 1  # (B,) words per sentence; a sentence has at most L
    keep_word = (torch.rand(size, length, device=word_ids.device) > deletion_ratio) & (columns < words[:, None])
    pick = (torch.rand(size, device=word_ids.device) * words).long()  # (B,) uniform in [0, n): the one kept if none is
    none_kept = ~keep_word.any(dim=1) & (words > 0)
    keep_word |= none_kept[:, None] & (columns == pick[:, None])
    real = tokens["attention_mask"].bool()
    keep = real & ((word_ids == NO_WORD) | keep_word.gather(1, word_ids.clamp(min=0)))  # (B, L) per token
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices  # kept tokens first, in their order
    mask = columns < keep.sum(dim=1, keepdim=True)  # (B, L)
    damaged = {key: value.gather(1, order).masked_fill(~mask, 0) for key, value in tokens.items()}
    damaged["input_ids"] = damaged["input_ids"].masked_fill(~mask, pad_token_id)
    damaged["attention_mask"] = mask.to(tokens["attention_mask"].dtype)
    return damaged
