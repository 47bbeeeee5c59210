"""Write a trained encoder as a model directory that loads anywhere, atomically (never a half-written directory).

One directory serves three loaders: `transformers.AutoModel` (safetensors weights, config, tokenizer),
`sentence_transformers.SentenceTransformer` (`modules.json` and its module folders) and `cse` itself
(`cse_config.json`, which says how to pool); a model card (`README.md`) can go with them.
"""

import json
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from transformers import PreTrainedTokenizerBase

from cse.errors import InputError
from cse.export.pooling import CSE_CONFIG_NAME, pooling_config
from cse.export.sentence_transformers_files import write_sentence_transformers_files
from cse.export.staging import ordinary_permissions, replace_directory, staging_directory
from cse.export.target import check_export_target, write_file_list
from cse.models.encoder import SentenceEncoder

MODEL_CARD_NAME = "README.md"


def write_model_directory(
    encoder: SentenceEncoder,
    tokenizer: PreTrainedTokenizerBase,
    out_dir: str | Path,
    *,
    model_card: str | None = None,
    overwrite: bool = True,
    sources: Iterable[str | Path] = (),
    matryoshka_dims: Sequence[int] | None = None,
    extra_files: Mapping[str, bytes] | None = None,
) -> Path:
    """Save a directory that `AutoModel.from_pretrained` and `SentenceTransformer` load with this encoder's embedding.

    Everything is written beside `out_dir` under a hidden name and renamed into place, so a crash or a full disk
    leaves either the previous `out_dir` or the new one, never a mix (see `cse.export.staging`). Only a previous
    export is ever replaced (see `cse.export.target`).

    Args:
        encoder: the trained encoder; its eval-mode embedding is what the directory reproduces.
        tokenizer: saved with the weights.
        out_dir: the directory to write.
        model_card: Markdown written as `README.md`; None writes no card.
        overwrite: replace a previous export at `out_dir`; if False, an existing `out_dir` is an error and left
            untouched. Anything else at `out_dir` is an error and left untouched either way.
        sources: files and folders the export was made from, which `out_dir` must not hold.
        matryoshka_dims: the embedding's prefixes trained to embed on their own (`model.matryoshka_dims`), recorded
            in `cse_config.json`; None: trained without Matryoshka.
        extra_files: more files by name, e.g. the model card's plots (`validation_curve.png`).
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
        (staging / CSE_CONFIG_NAME).write_text(json.dumps(pooling_config(encoder, matryoshka_dims), indent=2) + "\n")
        if encoder.prompt is None:  # PromptBERT's template has no sentence-transformers module: the card says so
            write_sentence_transformers_files(encoder, tokenizer, staging)
        if model_card is not None:
            (staging / MODEL_CARD_NAME).write_text(model_card, encoding="utf-8")
        for name, content in (extra_files or {}).items():
            (staging / name).write_bytes(content)
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
