"""The benchmark's sentences and how each side gets them: whole vocabulary words, one token each, drawn to set lengths
and checked against the tokenizer; the order that makes cse's shuffled sampler yield them in batches as drawn; and the
floor's batches, tokenized once up front and cut to each batch's longest sentence as cse's collator pads."""

import argparse
import itertools
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from transformers import PreTrainedTokenizerBase

from cse.data.resumable import ResumableSampler

SEED = 0  # the data module's default: the order of its sampler, which the sentences are written to match


def sentence_lengths(count: int, batch_size: int, length: int, shortest: int = 1, seed: int = 0) -> Tensor:
    """(count, B) token counts, drawn uniformly from L/2 + 1 (at least `shortest`) to L, the first sentence of each
    batch at L: every batch is padded to L."""
    if length < shortest:
        raise ValueError(f"--max-seq-length {length}: a sentence of this tokenizer has at least {shortest} tokens")
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(max(length // 2 + 1, shortest), length + 1, (count, batch_size), generator=generator)
    lengths[:, 0] = length
    return lengths


def vocabulary_words(tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """Lowercase ASCII words of the vocabulary that the tokenizer keeps whole: one token each."""
    vocab = tokenizer.get_vocab()
    words = sorted(token for token in vocab if token.isascii() and token.isalpha() and token.islower())
    ids = tokenizer(words, add_special_tokens=False)["input_ids"]
    return [word for word, word_ids in zip(words, ids, strict=True) if word_ids == [vocab[word]]]


def make_sentences(tokenizer: PreTrainedTokenizerBase, lengths: Tensor, seed: int = 0) -> list[str]:
    """One sentence per entry of `lengths` (row-major), of random vocabulary words, that tokenizes (with the special
    tokens) to exactly that many tokens; checked, so a tokenizer that splits them fails here, not in the timing."""
    words = vocabulary_words(tokenizer)
    counts = (lengths.flatten() - tokenizer.num_special_tokens_to_add()).tolist()
    if not words or min(counts) < 1:
        raise ValueError(f"cannot build sentences of {lengths.min()} tokens from {type(tokenizer).__name__}")
    drawn = torch.randint(len(words), (sum(counts),), generator=torch.Generator().manual_seed(seed)).tolist()
    starts = itertools.accumulate(counts, initial=0)
    sentences = [
        " ".join(words[index] for index in drawn[start : start + count])
        for start, count in zip(starts, counts, strict=False)
    ]
    produced = [len(ids) for ids in tokenizer(sentences)["input_ids"]]
    if produced != lengths.flatten().tolist():
        raise ValueError(f"{type(tokenizer).__name__} does not keep its vocabulary's words whole in a sentence")
    return sentences


def write_in_sampler_order(sentences: list[str], path: Path) -> None:
    """Write `sentences` one per line so that cse's training sampler (seed `SEED`, epoch 0, one process) yields them
    in their given order: batch k is sentences [kB, (k + 1)B)."""
    order = list(ResumableSampler(range(len(sentences)), seed=SEED))  # position i of the epoch reads line order[i]
    lines = [""] * len(sentences)
    for sentence, line in zip(sentences, order, strict=True):
        lines[line] = sentence
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


class PaddedBatches(Dataset):
    """Batch k of pre-tokenized sentences: rows [kB, (k + 1)B) of (N, L) ids and mask, cut to the batch's longest
    sentence rounded up to `pad_to_multiple_of` (or kept at L with `pad_to_max_length`), as cse's collator pads."""

    def __init__(
        self,
        encoded: dict[str, Tensor],
        batch_size: int,
        pad_to_multiple_of: int | None = None,
        pad_to_max_length: bool = False,
    ) -> None:
        self.ids, self.mask = encoded["input_ids"], encoded["attention_mask"]
        self.batch_size = batch_size
        self.multiple = pad_to_multiple_of or 1
        self.pad_to_max_length = pad_to_max_length

    def __len__(self) -> int:
        return len(self.ids) // self.batch_size

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        if self.pad_to_max_length:
            width = self.ids.size(1)
        else:
            width = -(-int(self.mask[rows].sum(1).max()) // self.multiple) * self.multiple  # rounded up
        return {
            "input_ids": self.ids[rows, :width].contiguous(),
            "attention_mask": self.mask[rows, :width].contiguous(),
        }


def floor_loader(
    tokenizer: PreTrainedTokenizerBase,
    sentences: list[str],
    args: argparse.Namespace,
    pad_to_multiple_of: int | None = None,
    pad_to_max_length: bool = False,
) -> DataLoader:
    """The floor's batches, from the sentences tokenized once: (B, L_k) ids and mask, padded as `PaddedBatches`,
    pinned on CUDA."""
    multiple = pad_to_multiple_of or 1
    width = -(-args.max_seq_length // multiple) * multiple  # L rounded up: each batch is cut to its own length below
    encoded = tokenizer(sentences, truncation=True, max_length=args.max_seq_length, return_token_type_ids=False)
    encoded = tokenizer.pad(encoded, padding="max_length", max_length=width, return_tensors="pt")
    return DataLoader(
        PaddedBatches(encoded, args.batch_size, pad_to_multiple_of, pad_to_max_length),
        batch_size=None,
        pin_memory=args.device == "cuda",
        num_workers=args.num_workers,
        persistent_workers=args.num_workers > 0,
    )
