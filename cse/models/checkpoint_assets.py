"""What a `cse` Lightning checkpoint carries besides weights: the backbone's config and tokenizer files.

With them a checkpoint is self-contained: it loads for evaluation or export on a machine that has neither
the base model directory nor hub access.
"""

import tempfile
from functools import cache
from pathlib import Path

from transformers import (
    AutoConfig,
    AutoModel,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from cse.models.loading import load_tokenizer

BACKBONE_ASSETS_KEY = "cse_backbone"


def backbone_assets(config: PretrainedConfig, tokenizer_name_or_path: str) -> dict:
    """`{"config": dict, "tokenizer_files": {file name: bytes}}` for a checkpoint."""
    return {"config": config.to_dict(), "tokenizer_files": _tokenizer_files(tokenizer_name_or_path)}


def backbone_from_assets(assets: dict) -> PreTrainedModel:
    """An untrained backbone of the stored architecture (weights come from the checkpoint's state dict)."""
    return AutoModel.from_config(AutoConfig.for_model(**assets["config"]))


def tokenizer_from_assets(assets: dict) -> PreTrainedTokenizerBase:
    with tempfile.TemporaryDirectory() as directory:
        for name, content in assets["tokenizer_files"].items():
            (Path(directory) / name).write_bytes(content)
        return AutoTokenizer.from_pretrained(directory)


@cache
def _tokenizer_files(tokenizer_name_or_path: str) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as directory:
        load_tokenizer(tokenizer_name_or_path).save_pretrained(directory)
        return {path.name: path.read_bytes() for path in Path(directory).iterdir() if path.is_file()}
