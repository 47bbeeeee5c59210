"""Write a trained encoder as a model directory that loads anywhere, atomically (never a half-written directory).

One directory serves three loaders: `transformers.AutoModel` (safetensors weights, config, tokenizer),
`sentence_transformers.SentenceTransformer` (`modules.json` and its module folders) and `cse` itself
(`cse_config.json`, which says how to pool); a model card (`README.md`) can go with them.
"""

import json
import shutil
from collections.abc import Iterable
from pathlib import Path

from transformers import PreTrainedTokenizerBase

from cse.errors import InputError
from cse.export_target import CSE_CONFIG_NAME, check_export_target, write_file_list
from cse.models.encoder import SentenceEncoder
from cse.models.poolers import uses_mlp
from cse.sentence_transformers_files import write_sentence_transformers_files
from cse.staged_directory import ordinary_permissions, replace_directory, staging_directory

MODEL_CARD_NAME = "README.md"


def export_hf_model(
    encoder: SentenceEncoder,
    tokenizer: PreTrainedTokenizerBase,
    out_dir: str | Path,
    *,
    model_card: str | None = None,
    overwrite: bool = True,
    sources: Iterable[str | Path] = (),
) -> Path:
    """Save a directory that `AutoModel.from_pretrained` and `SentenceTransformer` load with this encoder's embedding.

    Everything is written beside `out_dir` under a hidden name and renamed into place, so a crash or a full disk
    leaves either the previous `out_dir` or the new one, never a mix (see `cse.staged_directory`). Only a previous
    export is ever replaced (see `cse.export_target`).

    Args:
        encoder: the trained encoder; its eval-mode embedding is what the directory reproduces.
        tokenizer: saved with the weights.
        out_dir: the directory to write.
        model_card: Markdown written as `README.md`; None writes no card.
        overwrite: replace a previous export at `out_dir`; if False, an existing `out_dir` is an error and left
            untouched. Anything else at `out_dir` is an error and left untouched either way.
        sources: files and folders the export was made from, which `out_dir` must not hold.
    """
    out_dir, sources = Path(out_dir), tuple(sources)
    check_export_target(out_dir, overwrite, sources)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = staging_directory(out_dir)
    except OSError as error:
        raise InputError(f"export directory {out_dir}: cannot write there ({error.strerror})") from None
    try:
        encoder.backbone.save_pretrained(staging, state_dict=encoder.export_state_dict(), safe_serialization=True)
        tokenizer.save_pretrained(staging)
        (staging / CSE_CONFIG_NAME).write_text(json.dumps(pooling_config(encoder), indent=2) + "\n")
        write_sentence_transformers_files(encoder, tokenizer, staging)
        if model_card is not None:
            (staging / MODEL_CARD_NAME).write_text(model_card, encoding="utf-8")
        write_file_list(staging)
        ordinary_permissions(staging)
        check_export_target(out_dir, overwrite, sources)  # again: the directory may have changed in the meantime
        replace_directory(staging, out_dir)
    except OSError as error:
        raise InputError(
            f"export directory {out_dir}: write failed ({error.strerror or error}); nothing was replaced"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # already renamed away on success
    return out_dir


def pooling_config(encoder: SentenceEncoder) -> dict:
    """The content of `cse_config.json`: the training pooler and where the exported embedding is."""
    mlp_at_inference = uses_mlp(encoder.pooler_type, encoder.mlp_only_train, training=False)
    return {
        "pooler_type": encoder.pooler_type,
        "mlp_only_train": encoder.mlp_only_train,
        # Where the embedding is in `AutoModel(...)`'s output: the MLP was written as the model's pooler.
        "embedding": "pooler_output" if mlp_at_inference else encoder.pooler_type,
        "description": describe_embedding(encoder.pooler_type, encoder.mlp_only_train),
    }


def describe_embedding(pooler_type: str, mlp_only_train: bool) -> str:
    """One sentence saying what the exported embedding is, for `cse_config.json` and the model card."""
    if pooler_type == "cls" and not mlp_only_train:
        return (
            "the trained MLP (Linear + Tanh) over the [CLS] token's last hidden state, stored as the model's "
            "own pooler: transformers' `pooler_output`"
        )
    if pooler_type == "cls":
        return (
            "the [CLS] token's last hidden state, before the MLP: the MLP was used in training only "
            "(`mlp_only_train`, SimCSE §3) and is not exported, so `pooler_output` is not the embedding"
        )
    return {
        "cls_before_pooler": "the [CLS] token's last hidden state (`last_hidden_state[:, 0]`)",
        "avg": "the mean of the last layer's token states over real (non-padding) tokens",
        "avg_top2": "the mean over real tokens of (hidden_states[-2] + hidden_states[-1]) / 2, the last two layers",
        "avg_first_last": (
            "the mean over real tokens of (hidden_states[1] + hidden_states[-1]) / 2, the first transformer "
            "layer and the last"
        ),
    }[pooler_type]
