"""Load a sentence encoder for inference (HF directory, hub id or `cse` checkpoint) and embed sentences.

Shared by `cse eval`, `cse export`, `cse encode` and the Python API, so every path embeds exactly as training
validates: the same `SentenceEncoder` forward in eval mode, sentences encoded whole (model limit only).
"""

import json
from pathlib import Path

import torch
from torch import Tensor
from transformers import AutoModel, PreTrainedTokenizerBase

from cse.errors import InputError
from cse.export import CSE_CONFIG_NAME
from cse.models.checkpoint_assets import BACKBONE_ASSETS_KEY, backbone_from_assets, tokenizer_from_assets
from cse.models.encoder import SentenceEncoder
from cse.models.loading import check_local_model_path, from_pretrained, load_tokenizer
from cse.models.poolers import POOLER_TYPES, PoolerType

CHECKPOINT_SUFFIX = ".ckpt"


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
    if not path.is_file():
        raise InputError(f"checkpoint {path}: no such file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises several types for corrupt or foreign files
        raise InputError(f"checkpoint {path}: cannot be read ({type(error).__name__}: {error})") from None
    if BACKBONE_ASSETS_KEY not in checkpoint or "hyper_parameters" not in checkpoint:
        raise InputError(f"checkpoint {path}: not a cse checkpoint (no backbone config or hyperparameters)")
    assets, hparams = checkpoint[BACKBONE_ASSETS_KEY], checkpoint["hyper_parameters"]
    encoder = SentenceEncoder(backbone_from_assets(assets), hparams["pooler_type"], hparams["mlp_only_train"])
    prefix = "encoder."
    encoder.load_state_dict(
        {k.removeprefix(prefix): v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
    )
    if pooler_type not in (None, _inference_pooler(encoder)):
        raise InputError(
            f"checkpoint {path}: trained to embed with pooler '{_inference_pooler(encoder)}', not '{pooler_type}' "
            "(leave out --pooler for checkpoints)"
        )
    return encoder.eval(), tokenizer_from_assets(assets)


def _load_hf_model(model: str, pooler_type: PoolerType | None) -> tuple[SentenceEncoder, PreTrainedTokenizerBase]:
    check_local_model_path(model)
    pooler_type = pooler_type or _exported_pooler(model)
    backbone, info = from_pretrained(AutoModel, model, output_loading_info=True)
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
    return encoder.eval(), load_tokenizer(model)


def _inference_pooler(encoder: SentenceEncoder) -> PoolerType:
    """The pooler name that gives this encoder's eval-mode embedding from an exported model."""
    return "cls_before_pooler" if encoder.pooler_type == "cls" and encoder.mlp_only_train else encoder.pooler_type


def _exported_pooler(model: str) -> PoolerType:
    config_path = Path(model).expanduser() / CSE_CONFIG_NAME
    if not config_path.is_file():
        raise InputError(
            f"model '{model}': no {CSE_CONFIG_NAME}; say how to pool with --pooler ({', '.join(POOLER_TYPES)})"
        )
    embedding = json.loads(config_path.read_text())["embedding"]
    return "cls" if embedding == "pooler_output" else "cls_before_pooler" if embedding == "cls" else embedding
