"""The model the benchmark scripts train: a Hugging Face directory (`--model`), or a randomly initialized one of a
known shape (`--random-init-config`) with a tokenizer whose vocabulary is letter strings, saved to a temporary
directory."""

import argparse
import contextlib
import itertools
import string
import tempfile
from collections.abc import Iterator

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertModel, BertTokenizerFast

RANDOM_INIT_CONFIGS = {"bert-base": BertConfig}  # BertConfig's defaults are bert-base-uncased's shape


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """`--model PATH` or `--random-init-config NAME`, one of them required (see `model_directory`)."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a Hugging Face model directory")
    source.add_argument(
        "--random-init-config", choices=sorted(RANDOM_INIT_CONFIGS), help="a random model of this shape"
    )


def word_tokenizer(vocab_size: int, max_length: int) -> BertTokenizerFast:
    """A BERT-style tokenizer for a random model: [PAD] [UNK] [CLS] [SEP] [MASK], then letter strings (a, b, ..., aa,
    ab, ...) as whole words, `vocab_size` tokens in all."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = (itertools.product(string.ascii_lowercase, repeat=size) for size in itertools.count(1))
    words = ("".join(word) for word in itertools.chain.from_iterable(letters))
    vocab = {
        token: index for index, token in enumerate([*specials, *itertools.islice(words, vocab_size - len(specials))])
    }
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return BertTokenizerFast(tokenizer_object=backend, model_max_length=max_length)


@contextlib.contextmanager
def model_directory(args: argparse.Namespace) -> Iterator[str]:
    """`--model`, or a randomly initialized model of `--random-init-config` with a `word_tokenizer`, saved to a
    temporary directory."""
    if args.model is not None:
        yield args.model
        return
    with tempfile.TemporaryDirectory() as directory:
        torch.manual_seed(0)
        config = RANDOM_INIT_CONFIGS[args.random_init_config]()
        BertModel(config).save_pretrained(directory)
        word_tokenizer(config.vocab_size, config.max_position_embeddings).save_pretrained(directory)
        yield directory
