"""TSDAE's noise: delete a share of each sentence's words (Wang et al., 2021, §3; deletion ratio 0.6).

As sentence-transformers' `DenoisingAutoEncoderDataset.delete` (UKPLab/sentence-transformers,
`sentence_transformers/sentence_transformer/datasets/denoising_auto_encoder.py`): each word is kept when a uniform
draw exceeds the ratio (`np.random.rand(n) > del_ratio`), and when none is kept one word drawn uniformly is. The
words are the tokenizer's (its pre-tokenization: whitespace and punctuation for BERT, as NLTK's `word_tokenize` of
the reference), so deleting a word deletes all its subword tokens, and the special tokens ([CLS], [SEP]) stay. The
draws come from torch's global generator, as transformers' MLM masking: they follow `seed_everything`, and the
checkpointed random state (`cse.callbacks.rng_state`) resumes them.
"""

import torch
from torch import Tensor

NO_WORD = -1  # the word id stored for special tokens (fast tokenizers' `word_ids()` gives None)
NOISY_PREFIX = "noisy_"  # batch keys of the damaged sentence: noisy_input_ids, noisy_attention_mask, ...


def kept_positions(word_ids: list[int], deletion_ratio: float) -> list[int]:
    """Positions of the tokens left after deleting words: special tokens, and every token of each kept word.

    Args:
        word_ids: per token, the index of its word, `NO_WORD` for special tokens.
        deletion_ratio: probability that a word is deleted; at least one word is always kept.
    """
    words = sorted({word for word in word_ids if word != NO_WORD})
    if not words:  # nothing to delete (the reference returns such a text unchanged)
        return list(range(len(word_ids)))
    keep = torch.rand(len(words)) > deletion_ratio  # (n,)
    if not keep.any():  # at least one word remains, chosen uniformly
        keep[torch.randint(len(words), ())] = True
    kept = {word for word, kept in zip(words, keep.tolist(), strict=True) if kept}
    return [position for position, word in enumerate(word_ids) if word == NO_WORD or word in kept]


def noisy_features(rows: list[dict], token_keys: list[str], deletion_ratio: float) -> list[dict]:
    """Each single-sentence row's token lists after word deletion, under the same keys, ready for padding."""
    features = []
    for row in rows:
        positions = kept_positions(row["word_ids"][0], deletion_ratio)
        features.append({key: [row[key][0][position] for position in positions] for key in token_keys})
    return features


def noisy_batch(padded: dict[str, Tensor]) -> dict[str, Tensor]:
    """The padded (B, L') tensors of the damaged sentences under their batch keys (`noisy_input_ids`, ...)."""
    return {f"{NOISY_PREFIX}{key}": tensor for key, tensor in padded.items()}
