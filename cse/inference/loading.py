"""Load a sentence encoder for inference (HF directory, hub id or `cse` checkpoint) and embed sentences.

Shared by `cse eval`, `cse export`, `cse encode` and the Python API, so every path embeds exactly as training
validates: the same `SentenceEncoder` forward in eval mode, sentences encoded whole (model limit only).
"""

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from torch import Tensor
from transformers import AutoModel, PreTrainedTokenizerBase

from cse.errors import InputError, first_line
from cse.export.pooling import read_exported_pooler, read_exported_prompt
from cse.inference.model_directory import check_model_directory
from cse.models.encoder import SentenceEncoder
from cse.models.loading import check_local_model_path, from_pretrained, load_tokenizer
from cse.models.poolers import POOLER_TYPES, PoolerType
from cse.models.prompt_template import build_prompt_pooler
from cse.runs.checkpoint_model import load_checkpoint_encoder

CHECKPOINT_SUFFIX = ".ckpt"
T = TypeVar("T")


def load_encoder(
    model: str | Path, pooler_type: PoolerType | None = None
) -> tuple[SentenceEncoder, PreTrainedTokenizerBase]:
    """An encoder in eval mode and its tokenizer.

    Args:
        model: a `cse` Lightning checkpoint (`.ckpt`), a Hugging Face model directory or a hub id.
        pooler_type: how to pool. For a checkpoint, None keeps the training pooler. For a Hugging Face model,
            None reads `cse_config.json` (written by `cse` exports) and is required otherwise; `cls` means the
            model's own pooler output (Linear+Tanh over [CLS], as SimCSE's evaluation), an error when the
            checkpoint has no pooler weights.
    """
    if pooler_type is not None and pooler_type not in POOLER_TYPES:
        raise InputError(f"pooler '{pooler_type}': choose one of {', '.join(POOLER_TYPES)}")
    if str(model).endswith(CHECKPOINT_SUFFIX):
        return load_checkpoint_encoder(Path(model), pooler_type)
    return _load_hf_model(str(model), pooler_type)


@torch.no_grad()
def encode_sentences(
    encoder: SentenceEncoder,
    tokenizer: PreTrainedTokenizerBase,
    sentences: list[str],
    batch_size: int = 64,
    max_length: int | None = None,
    device: str | torch.device | None = None,
) -> Tensor:
    """Embeddings (N, H) in float32 on the CPU, in the order of `sentences`.

    Sentences are batched by length (as SentEval does) so padding is minimal; `max_length` None truncates only
    at the model's limit, as SimCSE's evaluation.
    """
    device = torch.device(device) if device is not None else next(encoder.parameters()).device
    encoder = encoder.to(device).eval()
    order = sorted(range(len(sentences)), key=lambda index: len(sentences[index]))
    embeddings = torch.empty(len(sentences), encoder.backbone.config.hidden_size)
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        batch = tokenizer(
            [sentences[index] for index in indices],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        ).to(device)
        embeddings[indices] = encoder(**batch).float().cpu()
    return embeddings


def _load_hf_model(model: str, pooler_type: PoolerType | None) -> tuple[SentenceEncoder, PreTrainedTokenizerBase]:
    check_local_model_path(model)
    check_model_directory(model)
    pooler_type = pooler_type or read_exported_pooler(model)
    backbone, info = _loaded(model, from_pretrained, AutoModel, model, output_loading_info=True, use_safetensors=True)
    if pooler_type == "cls":
        missing = [key for key in info["missing_keys"] if key.startswith("pooler.")]
        if missing or getattr(backbone, "pooler", None) is None:
            raise InputError(
                f"model '{model}': pooler 'cls' uses the model's pooler weights, but the checkpoint has none "
                "(use cls_before_pooler or avg)"
            )
    tokenizer = _loaded(model, load_tokenizer, model)
    prompt = None
    if pooler_type == "prompt":  # PromptBERT: the template is in cse_config.json
        prompt = build_prompt_pooler(read_exported_prompt(model), tokenizer, backbone.config)
    encoder = SentenceEncoder(backbone, pooler_type, prompt=prompt)
    if pooler_type == "cls":  # SimCSE's evaluation: `cls` is the model's own pooler output (Linear+Tanh)
        encoder.mlp.load_state_dict(encoder.hf_pooler.state_dict())
    return encoder.eval(), tokenizer


def _loaded(model: str, load: Callable[..., T], *args, **kwargs) -> T:
    """`load(*args, **kwargs)`; what transformers raises for files that passed `check_model_directory` is one line."""
    try:
        return load(*args, **kwargs)
    except InputError:
        raise
    except Exception as error:  # transformers and tokenizers raise many types for files they cannot use
        raise InputError(f"model '{model}': cannot be loaded ({type(error).__name__}: {first_line(error)})") from None
