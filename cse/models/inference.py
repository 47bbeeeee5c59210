"""Load a sentence encoder for inference (HF directory, hub id or `cse` checkpoint) and embed sentences.

Shared by `cse eval`, `cse export`, `cse encode` and the Python API, so every path embeds exactly as training
validates: the same `SentenceEncoder` forward in eval mode, sentences encoded whole (model limit only).
"""

import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from torch import Tensor
from transformers import AutoModel, PreTrainedTokenizerBase

from cse.checkpoint_file import load_checkpoint
from cse.errors import InputError, first_line
from cse.export import CSE_CONFIG_NAME
from cse.models.checkpoint_assets import BACKBONE_ASSETS_KEY, backbone_from_assets, tokenizer_from_assets
from cse.models.encoder import SentenceEncoder
from cse.models.loading import check_local_model_path, from_pretrained, load_tokenizer
from cse.models.model_directory import check_model_directory
from cse.models.poolers import POOLER_TYPES, PoolerType

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
        return _load_lightning_checkpoint(Path(model), pooler_type)
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


def _load_lightning_checkpoint(
    path: Path, pooler_type: PoolerType | None
) -> tuple[SentenceEncoder, PreTrainedTokenizerBase]:
    checkpoint = load_checkpoint(path)
    where = f"checkpoint {path}"
    missing = [key for key in (BACKBONE_ASSETS_KEY, "hyper_parameters", "state_dict") if key not in checkpoint]
    if missing:
        raise InputError(f"{where}: not a cse checkpoint (no {', '.join(missing)})")
    assets, hparams = checkpoint[BACKBONE_ASSETS_KEY], checkpoint["hyper_parameters"]
    if not isinstance(hparams, dict) or not {"pooler_type", "mlp_only_train"} <= hparams.keys():
        raise InputError(f"{where}: not a cse checkpoint (no pooler_type and mlp_only_train hyperparameters)")
    try:
        backbone = backbone_from_assets(assets)
    except Exception as error:  # a damaged or foreign config: transformers raises several types
        raise InputError(
            f"{where}: its backbone config cannot be used ({type(error).__name__}: {first_line(error)})"
        ) from None
    encoder = SentenceEncoder(backbone, hparams["pooler_type"], hparams["mlp_only_train"])
    prefix = "encoder."
    try:
        encoder.load_state_dict(
            {k.removeprefix(prefix): v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
        )
    except (RuntimeError, AttributeError) as error:  # missing, unexpected or mis-shaped weights
        details = [line.strip() for line in str(error).splitlines()[1:] if line.strip()]  # line 1 is a title
        reason = details[0] if details else first_line(error)
        raise InputError(f"{where}: its weights do not fit its backbone config ({reason})") from None
    if pooler_type not in (None, _inference_pooler(encoder)):
        raise InputError(
            f"{where}: trained to embed with pooler '{_inference_pooler(encoder)}', not '{pooler_type}' "
            "(leave out --pooler for checkpoints)"
        )
    try:
        tokenizer = tokenizer_from_assets(assets)
    except Exception as error:  # damaged tokenizer files: tokenizers and transformers raise several types
        raise InputError(
            f"{where}: its tokenizer cannot be loaded ({type(error).__name__}: {first_line(error)})"
        ) from None
    return encoder.eval(), tokenizer


def _load_hf_model(model: str, pooler_type: PoolerType | None) -> tuple[SentenceEncoder, PreTrainedTokenizerBase]:
    check_local_model_path(model)
    check_model_directory(model)
    pooler_type = pooler_type or _exported_pooler(model)
    backbone, info = _loaded(model, from_pretrained, AutoModel, model, output_loading_info=True, use_safetensors=True)
    if pooler_type == "cls":
        missing = [key for key in info["missing_keys"] if key.startswith("pooler.")]
        if missing or getattr(backbone, "pooler", None) is None:
            raise InputError(
                f"model '{model}': pooler 'cls' uses the model's pooler weights, but the checkpoint has none "
                "(use cls_before_pooler or avg)"
            )
    encoder = SentenceEncoder(backbone, pooler_type)
    if pooler_type == "cls":  # SimCSE's evaluation: `cls` is the model's own pooler output (Linear+Tanh)
        encoder.mlp.load_state_dict(encoder.hf_pooler.state_dict())
    return encoder.eval(), _loaded(model, load_tokenizer, model)


def _loaded(model: str, load: Callable[..., T], *args, **kwargs) -> T:
    """`load(*args, **kwargs)`; what transformers raises for files that passed `check_model_directory` is one line."""
    try:
        return load(*args, **kwargs)
    except InputError:
        raise
    except Exception as error:  # transformers and tokenizers raise many types for files they cannot use
        raise InputError(f"model '{model}': cannot be loaded ({type(error).__name__}: {first_line(error)})") from None


def _inference_pooler(encoder: SentenceEncoder) -> PoolerType:
    """The pooler name that gives this encoder's eval-mode embedding from an exported model."""
    return "cls_before_pooler" if encoder.pooler_type == "cls" and encoder.mlp_only_train else encoder.pooler_type


def _exported_pooler(model: str) -> PoolerType:
    config_path = Path(model).expanduser() / CSE_CONFIG_NAME
    if not config_path.is_file():
        raise InputError(
            f"model '{model}': no {CSE_CONFIG_NAME}; say how to pool with --pooler ({', '.join(POOLER_TYPES)})"
        )
    config = json.loads(config_path.read_text(encoding="utf-8"))  # valid JSON: `check_model_directory`
    embedding = config.get("embedding") if isinstance(config, dict) else None
    pooler_type = "cls" if embedding == "pooler_output" else "cls_before_pooler" if embedding == "cls" else embedding
    if pooler_type not in POOLER_TYPES:
        raise InputError(
            f"model '{model}': {CSE_CONFIG_NAME} has no valid 'embedding' ({embedding!r}); say how to pool with "
            f"--pooler ({', '.join(POOLER_TYPES)})"
        )
    return pooler_type
