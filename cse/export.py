"""Write a trained encoder as a Hugging Face model directory, atomically (never a half-written directory)."""

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerBase

from cse.errors import InputError
from cse.models.encoder import SentenceEncoder
from cse.models.poolers import uses_mlp

CSE_CONFIG_NAME = "cse_config.json"


def export_hf_model(encoder: SentenceEncoder, tokenizer: PreTrainedTokenizerBase, out_dir: str | Path) -> Path:
    """Save safetensors weights, config and tokenizer that `AutoModel.from_pretrained(out_dir)` loads cleanly.

    The directory is written beside `out_dir` under a temporary name and renamed into place, so a crash leaves
    either the previous `out_dir` or the new one, never a mix. `cse_config.json` records how to pool.
    """
    out_dir = Path(out_dir)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    except OSError as error:
        raise InputError(f"export directory {out_dir}: cannot write there ({error.strerror})") from None
    try:
        encoder.backbone.save_pretrained(staging, state_dict=encoder.export_state_dict(), safe_serialization=True)
        tokenizer.save_pretrained(staging)
        (staging / CSE_CONFIG_NAME).write_text(json.dumps(_pooling_config(encoder), indent=2) + "\n")
        _replace_directory(staging, out_dir)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise InputError(
            f"export directory {out_dir}: write failed ({error.strerror or error}); nothing was replaced"
        ) from None
    return out_dir


def load_checkpoint_weights(module: torch.nn.Module, checkpoint_path: str | Path) -> None:
    """Load a Lightning checkpoint's `state_dict` into `module` (e.g. the best one after `fit`)."""
    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
    module.load_state_dict(checkpoint["state_dict"])


def _pooling_config(encoder: SentenceEncoder) -> dict:
    mlp_at_inference = uses_mlp(encoder.pooler_type, encoder.mlp_only_train, training=False)
    return {
        "pooler_type": encoder.pooler_type,
        "mlp_only_train": encoder.mlp_only_train,
        # Where the embedding is in `AutoModel(...)`'s output: the MLP was written as the model's pooler.
        "embedding": "pooler_output" if mlp_at_inference else encoder.pooler_type,
    }


def _replace_directory(staging: Path, out_dir: Path) -> None:
    """Swap `staging` into `out_dir`; an existing `out_dir` is moved aside first and removed only afterwards."""
    if not out_dir.exists():
        os.replace(staging, out_dir)
        return
    previous = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.previous.", dir=out_dir.parent))
    os.replace(out_dir, previous / out_dir.name)
    os.replace(staging, out_dir)
    shutil.rmtree(previous)
