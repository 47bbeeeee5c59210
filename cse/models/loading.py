"""Load a Hugging Face backbone and tokenizer from a local directory or a hub id, with one-line errors."""

from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from cse.errors import InputError, first_line

# Model types whose position ids count from the padding index + 1, as fairseq's RoBERTa (`padding_idx + 1` in their
# embeddings' position ids in transformers).
POSITIONS_AFTER_PADDING = (
    "camembert",
    "data2vec-text",
    "esm",
    "ibert",
    "longformer",
    "luke",
    "mpnet",
    "roberta",
    "roberta-prelayernorm",
    "xlm-roberta",
    "xlm-roberta-xl",
    "xmod",
)


def load_backbone(model_name_or_path: str) -> PreTrainedModel:
    """`AutoModel.from_pretrained` in float32, returned in train mode (from_pretrained returns eval mode, dropout off).

    float32 whatever the files hold: a model saved in bfloat16 would otherwise train in it (its small updates rounded
    away, and its layers out of step with the float32 MLP); the trainer's `precision` sets the compute dtype.
    """
    model = from_pretrained(AutoModel, model_name_or_path, dtype=torch.float32)
    return model.train()


def load_tokenizer(model_name_or_path: str) -> PreTrainedTokenizerBase:
    """`AutoTokenizer.from_pretrained` with the errors of `load_backbone`; its ids must fit the model's embeddings, and
    its `model_max_length` is at most the model's positions (`position_limit`)."""
    tokenizer = from_pretrained(AutoTokenizer, model_name_or_path)
    if set(tokenizer.get_vocab()) <= set(tokenizer.all_special_tokens):
        # transformers 5 builds an empty tokenizer of the config's class when a directory has no tokenizer files:
        # every word would be [UNK], and training would go on without a word.
        raise InputError(
            f"model '{model_name_or_path}': its tokenizer has only its {len(tokenizer)} special tokens (no tokenizer "
            "files such as tokenizer.json or vocab.txt in the directory); add the tokenizer the model was trained with"
        )
    config = from_pretrained(AutoConfig, model_name_or_path)
    limit = position_limit(config)
    if limit is not None and tokenizer.model_max_length > limit:
        # Many tokenizers set no limit (1e30): `truncation=True` would let a long sentence run past the positions.
        tokenizer.model_max_length = limit
    vocab_size = getattr(config, "vocab_size", None)
    if vocab_size is not None and len(tokenizer) > vocab_size:
        # Caught here, not as an IndexError in the embedding lookup of the first batch holding such a token.
        raise InputError(
            f"model '{model_name_or_path}': the tokenizer has {len(tokenizer)} tokens but the model's embedding "
            f"matrix has {vocab_size} rows (config.json vocab_size); resize the embeddings "
            "(model.resize_token_embeddings(len(tokenizer))) or use the tokenizer the model was trained with"
        )
    return tokenizer


def position_limit(config: PretrainedConfig) -> int | None:
    """The most tokens the model takes: its position embeddings, less the padding offset of RoBERTa-style models (whose
    position ids start after the padding index: 514 embeddings hold 512 positions); None when the config has none."""
    positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(positions, int) or positions <= 0:
        return None
    if config.model_type in POSITIONS_AFTER_PADDING and isinstance(config.pad_token_id, int):
        positions -= config.pad_token_id + 1
    return positions


def from_pretrained(auto_class: type, model_name_or_path: str, **kwargs):
    """`auto_class.from_pretrained(model_name_or_path, **kwargs)` with one-line `InputError`s for bad paths/hub ids."""
    check_local_model_path(model_name_or_path)
    try:
        return auto_class.from_pretrained(model_name_or_path, **kwargs)
    except OSError as error:
        reason = first_line(error)
        raise InputError(
            f"model '{model_name_or_path}': not a local model directory, and loading it from the Hugging Face hub "
            f"failed: {reason}"
        ) from error


def _run_folder_hint(path: Path) -> str:
    """Where a `cse fit` run folder (or its checkpoints folder) keeps a loadable model; empty for other folders."""
    if (path / "best_model" / "config.json").is_file():
        return f"; it is a cse run folder: its exported model is {path / 'best_model'}"
    checkpoints = sorted(path.glob("*.ckpt")) or sorted(path.glob("checkpoints/*.ckpt"))
    if checkpoints:
        return f"; it holds cse checkpoints: give one, such as {checkpoints[0]}"
    return ""


def check_local_model_path(model_name_or_path: str) -> None:
    """Fail early on a path that does not exist or is not a model directory (a hub id is left to the hub)."""
    path = Path(model_name_or_path).expanduser()
    looks_like_path = model_name_or_path.startswith(("/", ".", "~")) or model_name_or_path.count("/") > 1
    if path.exists():
        if not path.is_dir():
            raise InputError(f"model '{model_name_or_path}': is a file; expected a model directory with config.json")
        if not (path / "config.json").is_file():
            raise InputError(
                f"model '{model_name_or_path}': directory has no config.json (not a Hugging Face model)"
                f"{_run_folder_hint(path)}"
            )
    elif looks_like_path:
        raise InputError(f"model '{model_name_or_path}': no such directory")
