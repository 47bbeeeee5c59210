"""Tiny random models of every encoder family (hidden 32, 2 layers), each with a tokenizer of the family's own kind
learned from the generated corpus (the same on every run), as `*ForMaskedLM` classes so that the MLM head exists
(see `conftest.py`).

Families differ where bugs hide: no `token_type_ids` (RoBERTa, XLM-R, DistilBERT, ModernBERT), no pooler
(DistilBERT, DeBERTa, ModernBERT), no absolute positions (DeBERTa's relative attention, ModernBERT's RoPE),
an MLM head that is not one module (DistilBERT, ModernBERT).
"""

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    BertConfig,
    BertForMaskedLM,
    BertTokenizer,
    DebertaV2Config,
    DebertaV2ForMaskedLM,
    DebertaV2Tokenizer,
    DistilBertConfig,
    DistilBertForMaskedLM,
    DistilBertTokenizer,
    ModernBertConfig,
    ModernBertForMaskedLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
    RobertaConfig,
    RobertaForMaskedLM,
    RobertaTokenizer,
    XLMRobertaConfig,
    XLMRobertaForMaskedLM,
    XLMRobertaTokenizer,
)
from unigram_pieces import stable_pieces

from cse.data.synthetic import QuickstartFiles

VOCAB_SIZE = 300  # a few hundred pieces: the corpus's characters and its common words
MAX_LENGTH = 128  # the tokenizers' model_max_length; every model has at least this many positions
SIZE = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 37}
DROPOUT = {"hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}
# Ten times BERT's 0.02: at 0.02 a random model's [CLS] states are so alike that the cosines of all STS pairs lie
# within 1e-5 of 1, where float rounding decides their ranks; at 0.2 they spread over a few hundredths.
INIT = {"initializer_range": 0.2}


@dataclass(frozen=True)
class Family:
    """An encoder family as the tests see it.

    Attributes:
        name: the fixture's key and the test id.
        title: its name in the README's table.
        model_type: its config's `model_type`.
        has_pooler: `AutoModel` holds a Linear+Tanh pooler, which `cls` with the MLP kept at inference needs.
        token_type_ids: the tokenizer makes `token_type_ids`.
        build: `(corpus lines) -> (tokenizer, model)`, the model an untrained `*ForMaskedLM`.
    """

    name: str
    title: str
    model_type: str
    has_pooler: bool
    token_type_ids: bool
    build: Callable[[list[str]], tuple[PreTrainedTokenizerBase, PreTrainedModel]]


def _trained(model: models.Model, trainer: trainers.Trainer, lines: list[str], pre_tokenizer) -> Tokenizer:
    tokenizer = Tokenizer(model)
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.train_from_iterator(lines, trainer)
    return tokenizer


def _wordpiece_vocab(lines: list[str]) -> dict[str, int]:
    """BERT's WordPiece, uncased: [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, [MASK] 4, every character of the corpus and its
    `##` continuation, then its most frequent words (ties by spelling) up to `VOCAB_SIZE`; rarer words split into
    characters.

    Built from counts rather than by `tokenizers`' WordPieceTrainer, whose vocabulary changes from run to run
    (huggingface/tokenizers#1794: `##` pieces numbered in hash-map order break its ties), and so did the tests' models.
    """
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    splitter = pre_tokenizers.BertPreTokenizer()
    words = Counter(word for line in lines for word, _ in splitter.pre_tokenize_str(line.lower()))
    characters = sorted({character for word in words for character in word})
    pieces = specials + characters + [f"##{character}" for character in characters]
    frequent = sorted((word for word in words if word not in pieces), key=lambda word: (-words[word], word))
    pieces += frequent[: VOCAB_SIZE - len(pieces)]
    return {piece: index for index, piece in enumerate(pieces)}


def _byte_level_bpe(lines: list[str], specials: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """GPT-2's byte-level BPE (RoBERTa, ModernBERT): vocabulary and merges, the special tokens first."""
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer = _trained(models.BPE(), trainer, lines, pre_tokenizers.ByteLevel(add_prefix_space=False))
    merges = [tuple(merge) for merge in json.loads(tokenizer.to_str())["model"]["merges"]]  # [[a, b], ...]
    return tokenizer.get_vocab(), merges


def _unigram_pieces(lines: list[str], specials: list[str], unk: str) -> list[tuple[str, float]]:
    """A SentencePiece-style unigram model (XLM-R, DeBERTa-v2/v3): `[(piece, log probability)]`, the specials first
    (see `unigram_pieces`)."""
    trainer = trainers.UnigramTrainer(vocab_size=VOCAB_SIZE, special_tokens=specials, unk_token=unk)
    return stable_pieces(_trained(models.Unigram(), trainer, lines, pre_tokenizers.Metaspace()), specials)


def _checked(tokenizer: PreTrainedTokenizerBase, size: int) -> PreTrainedTokenizerBase:
    tokenizer.model_max_length = MAX_LENGTH
    assert len(tokenizer) == size, f"{type(tokenizer).__name__} lost its vocabulary: {len(tokenizer)} != {size}"
    return tokenizer


def _bert(lines: list[str]) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    vocab = _wordpiece_vocab(lines)
    tokenizer = _checked(BertTokenizer(vocab=vocab), len(vocab))
    config = BertConfig(vocab_size=len(tokenizer), max_position_embeddings=MAX_LENGTH, **SIZE, **DROPOUT, **INIT)
    return tokenizer, BertForMaskedLM(config)


def _distilbert(lines: list[str]) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    vocab = _wordpiece_vocab(lines)
    tokenizer = _checked(DistilBertTokenizer(vocab=vocab), len(vocab))
    config = DistilBertConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=MAX_LENGTH,
        dim=SIZE["hidden_size"],
        n_layers=SIZE["num_hidden_layers"],
        n_heads=SIZE["num_attention_heads"],
        hidden_dim=SIZE["intermediate_size"],
        dropout=0.1,
        attention_dropout=0.1,
        pad_token_id=tokenizer.pad_token_id,
        **INIT,
    )
    return tokenizer, DistilBertForMaskedLM(config)


def _roberta(lines: list[str]) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    vocab, merges = _byte_level_bpe(lines, ["<s>", "<pad>", "</s>", "<unk>", "<mask>"])  # fairseq's order: pad 1
    tokenizer = _checked(RobertaTokenizer(vocab=vocab, merges=merges), len(vocab))
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=MAX_LENGTH + tokenizer.pad_token_id + 1,  # positions start after the padding index
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **SIZE,
        **DROPOUT,
        **INIT,
    )
    return tokenizer, RobertaForMaskedLM(config)


def _xlm_roberta(lines: list[str]) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    pieces = _unigram_pieces(lines, ["<s>", "<pad>", "</s>", "<unk>"], "<unk>") + [("<mask>", 0.0)]  # mask last
    tokenizer = _checked(XLMRobertaTokenizer(vocab=pieces), len(pieces))
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=MAX_LENGTH + tokenizer.pad_token_id + 1,
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **SIZE,
        **DROPOUT,
        **INIT,
    )
    return tokenizer, XLMRobertaForMaskedLM(config)


def _deberta_v2_config(tokenizer: PreTrainedTokenizerBase, **overrides) -> DebertaV2Config:
    """deberta-v3-base's settings, shrunk: relative attention only (no absolute position embeddings), log buckets."""
    return DebertaV2Config(
        vocab_size=len(tokenizer),
        max_position_embeddings=MAX_LENGTH,
        relative_attention=True,
        position_biased_input=False,
        pos_att_type=["p2c", "c2p"],
        position_buckets=32,
        norm_rel_ebd="layer_norm",
        share_att_key=True,
        type_vocab_size=0,
        pad_token_id=tokenizer.pad_token_id,
        **SIZE,
        **DROPOUT,
        **INIT,
        **overrides,
    )


def _deberta_tokenizer(lines: list[str]) -> PreTrainedTokenizerBase:
    pieces = _unigram_pieces(lines, ["[PAD]", "[CLS]", "[SEP]", "[UNK]"], "[UNK]") + [("[MASK]", 0.0)]
    return _checked(DebertaV2Tokenizer(vocab=pieces), len(pieces))


def _deberta_v2(lines: list[str]) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    tokenizer = _deberta_tokenizer(lines)
    # deberta-v2-xlarge: a convolution beside the first layer (conv_kernel_size), which v3 dropped.
    config = _deberta_v2_config(tokenizer, conv_kernel_size=3, conv_act="gelu")
    return tokenizer, DebertaV2ForMaskedLM(config)


def _deberta_v3(lines: list[str]) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    tokenizer = _deberta_tokenizer(lines)
    # The MLM head in DeBERTa's original layout (`lm_predictions`, decoding with the word embeddings), which
    # transformers reads with `legacy: false`; deberta-v2 above keeps transformers' default (`cls.predictions`).
    return tokenizer, DebertaV2ForMaskedLM(_deberta_v2_config(tokenizer, legacy=False))


def _modernbert(lines: list[str]) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    specials = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    vocab, merges = _byte_level_bpe(lines, specials)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    # As answerdotai/ModernBERT-base: a PreTrainedTokenizerFast that makes no token_type_ids.
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        **{f"{name}_token": f"[{name.upper()}]" for name in ("unk", "cls", "sep", "pad", "mask")},
        model_input_names=["input_ids", "attention_mask"],
    )
    tokenizer = _checked(tokenizer, len(vocab))
    config = ModernBertConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=MAX_LENGTH,
        # Layer 0 attends globally, layer 1 within a window of 16 tokens (ModernBERT-base: 128, every third global).
        local_attention=16,
        global_attn_every_n_layers=2,
        # ModernBERT's dropouts are all 0 by default: unsupervised SimCSE's two views would be identical.
        attention_dropout=0.1,
        embedding_dropout=0.1,
        mlp_dropout=0.1,
        pad_token_id=tokenizer.pad_token_id,
        cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        **SIZE,
        **INIT,
    )
    return tokenizer, ModernBertForMaskedLM(config)


FAMILIES = {
    family.name: family
    for family in (
        Family("bert", "BERT", "bert", has_pooler=True, token_type_ids=True, build=_bert),
        Family("roberta", "RoBERTa", "roberta", has_pooler=True, token_type_ids=False, build=_roberta),
        Family("xlm-roberta", "XLM-R", "xlm-roberta", has_pooler=True, token_type_ids=False, build=_xlm_roberta),
        Family("distilbert", "DistilBERT", "distilbert", has_pooler=False, token_type_ids=False, build=_distilbert),
        Family("deberta-v2", "DeBERTa-v2", "deberta-v2", has_pooler=False, token_type_ids=True, build=_deberta_v2),
        Family("deberta-v3", "DeBERTa-v3", "deberta-v2", has_pooler=False, token_type_ids=True, build=_deberta_v3),
        Family("modernbert", "ModernBERT", "modernbert", has_pooler=False, token_type_ids=False, build=_modernbert),
    )
}


def corpus_lines(data: QuickstartFiles) -> list[str]:
    """Every sentence of the generated training corpus and dev set: the tokenizers' training text."""
    dev = [line.split("\t") for line in Path(data.dev_file).read_text().splitlines()[1:]]
    return Path(data.train_file).read_text().splitlines() + [sentence for row in dev for sentence in row[:2]]


# Every pooler of `cse.models.poolers` as (pooler_type, mlp_only_train): `cls` twice, with its MLP kept at inference and
# with the MLP for training only.
POOLINGS = (
    ("cls", False),
    ("cls", True),
    ("cls_before_pooler", False),
    ("avg", False),
    ("avg_top2", False),
    ("avg_first_last", False),
)
# The pooling each family trains with through `cse fit` (test_family_fit.py), unsupervised with the MLM loss and on
# triplets; test_family_export.py exports every other pooling of the family from memory.
FITTED: dict[str, dict[str, tuple[str, bool]]] = {
    "bert": {"unsupervised": ("cls", True), "triplets": ("cls", False)},
    "roberta": {"unsupervised": ("avg", False), "triplets": ("cls", False)},
    "xlm-roberta": {"unsupervised": ("avg_first_last", False), "triplets": ("cls", False)},
    "distilbert": {"unsupervised": ("cls", True), "triplets": ("avg_top2", False)},
    "deberta-v2": {"unsupervised": ("avg_top2", False), "triplets": ("cls_before_pooler", False)},
    "deberta-v3": {"unsupervised": ("cls", True), "triplets": ("avg", False)},
    "modernbert": {"unsupervised": ("cls", True), "triplets": ("avg_first_last", False)},
}


def pooling_id(pooling: tuple[str, bool]) -> str:
    pooler_type, mlp_only_train = pooling
    return f"{pooler_type}-mlp_only_train" if mlp_only_train else pooler_type
