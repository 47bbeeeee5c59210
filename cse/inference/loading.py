"""Load a sentence encoder for inference (HF directory, hub id or `cse` checkpoint) and embed sentences.

Shared by `cse eval`, `cse export`, `cse encode` and the Python API, so every path embeds exactly as training
validates: the same `SentenceEncoder` forward in eval mode, sentences encoded whole (model limit only); a PromptBERT
model's sentences as its reference's test puts them in the template (`sentence_as_tested`), as `cse validate|test`. A
sentence-transformers directory that is not a `cse` export embeds as `SentenceTransformer(directory).encode`: its
pooling, truncation and normalisation are read from its files (`cse.inference.sentence_transformers_directory`).
"""

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor
from transformers import AutoModel, PreTrainedTokenizerBase

from cse.errors import InputError, first_line
from cse.export.pooling import read_exported_pooler, read_exported_prompt
from cse.inference.model_directory import check_model_directory
from cse.inference.sentence_transformers_directory import SentenceTransformersPipeline, read_pipeline
from cse.models.encoder import SentenceEncoder
from cse.models.loading import check_local_model_path, from_pretrained, load_tokenizer, position_limit
from cse.models.poolers import POOLER_TYPES, PoolerType
from cse.models.prompt_template import build_prompt_pooler, sentence_as_tested
from cse.runs.checkpoint_model import load_checkpoint_encoder

CHECKPOINT_SUFFIX = ".ckpt"
T = TypeVar("T")


def load_encoder(
    model: str | Path, pooler_type: PoolerType | None = None, max_length: int | None = None
) -> tuple[SentenceEncoder, PreTrainedTokenizerBase]:
    """An encoder in eval mode and its tokenizer, whose `model_max_length` is where sentences are truncated.

    Args:
        model: a `cse` Lightning checkpoint (`.ckpt`), a Hugging Face model directory or a hub id.
        pooler_type: how to pool. For a checkpoint, None keeps the training pooler. For a Hugging Face model,
            None reads `cse_config.json` (written by `cse` exports), else a sentence-transformers directory's
            `Pooling` module, and is required otherwise; `cls` means the model's own pooler output (Linear+Tanh over
            [CLS], as SimCSE's evaluation), an error when the checkpoint has no pooler weights.
        max_length: truncate sentences to this many tokens; None: the model's limit, or a sentence-transformers
            directory's `max_seq_length`.

    A given `pooler_type` or `max_length` that differs from what a sentence-transformers directory says wins, with one
    `warning:` line saying so.
    """
    if pooler_type is not None and pooler_type not in POOLER_TYPES:
        raise InputError(f"pooler '{pooler_type}': choose one of {', '.join(POOLER_TYPES)}")
    if str(model).startswith("~"):  # a path under the home folder (no hub id starts so), which transformers leaves
        model = Path(model).expanduser()
    if str(model).endswith(CHECKPOINT_SUFFIX):
        encoder, tokenizer = load_checkpoint_encoder(Path(model), pooler_type)
    else:
        encoder, tokenizer = _load_hf_model(str(model), pooler_type, max_length)
    if max_length is not None:
        tokenizer.model_max_length = max_length
    return encoder, tokenizer


@torch.no_grad()
def encode_sentences(
    encoder: SentenceEncoder,
    tokenizer: PreTrainedTokenizerBase,
    sentences: list[str],
    batch_size: int = 64,
    device: str | torch.device | None = None,
) -> Tensor:
    """Embeddings (N, H) in float32 on the CPU, in the order of `sentences`.

    Sentences are batched by length (as SentEval does) so padding is minimal, and truncated at the tokenizer's
    `model_max_length` (`load_encoder`'s): the model's limit unless set otherwise, as SimCSE's evaluation. A PromptBERT
    encoder embeds each sentence as the reference's test does (`sentence_as_tested`: "." appended).
    """
    if encoder.prompt is not None:
        sentences = [sentence_as_tested(sentence) for sentence in sentences]
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
            return_tensors="pt",
        ).to(device)
        embeddings[indices] = encoder(**batch).float().cpu()
    return embeddings


def _load_hf_model(
    model: str, pooler_type: PoolerType | None, max_length: int | None
) -> tuple[SentenceEncoder, PreTrainedTokenizerBase]:
    check_local_model_path(model)
    check_model_directory(model)
    pipeline = read_pipeline(model)
    if pipeline is None:
        pooler_type = pooler_type or read_exported_pooler(model)
    else:
        pooler_type = _pipeline_pooler(model, pipeline, pooler_type)
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
    normalize = pipeline is not None and pipeline.normalize
    encoder = SentenceEncoder(backbone, pooler_type, prompt=prompt, normalize=normalize)
    if pooler_type == "cls":  # SimCSE's evaluation: `cls` is the model's own pooler output (Linear+Tanh)
        encoder.mlp.load_state_dict(encoder.hf_pooler.state_dict())
    if pipeline is not None and pipeline.max_length is not None:
        if max_length not in (None, pipeline.max_length):
            rank_zero_info(
                f"warning: model '{model}': --max-length {max_length}, where {pipeline.max_length_key} is "
                f"{pipeline.max_length}: truncating at {max_length}, unlike sentence-transformers"
            )
        limit = position_limit(backbone.config)  # sentence-transformers would run past the positions: cse stops
        tokenizer.model_max_length = pipeline.max_length if limit is None else min(pipeline.max_length, limit)
    return encoder.eval(), tokenizer


def _pipeline_pooler(model: str, pipeline: SentenceTransformersPipeline, pooler_type: PoolerType | None) -> PoolerType:
    """The given `pooler_type` (with a warning where the directory's Pooling differs), else the directory's."""
    named = f"{pipeline.pooling_file} pools by {pipeline.pooling}"
    if pooler_type is None:
        if pipeline.pooler_type is None:
            raise InputError(
                f"model '{model}': {named}, which cse has no pooler for; embed with sentence-transformers, or say how "
                f"to pool with --pooler ({', '.join(POOLER_TYPES)})"
            )
        return pipeline.pooler_type
    if pooler_type != pipeline.pooler_type:
        same = f" (cse's {pipeline.pooler_type})" if pipeline.pooler_type else ""
        rank_zero_info(
            f"warning: model '{model}': --pooler {pooler_type}, where {named}{same}: embedding with {pooler_type}, "
            "unlike sentence-transformers"
        )
    return pooler_type


def _loaded(model: str, load: Callable[..., T], *args, **kwargs) -> T:
    """`load(*args, **kwargs)`; what transformers raises for files that passed `check_model_directory` is one line."""
    try:
        return load(*args, **kwargs)
    except InputError:
        raise
    except Exception as error:  # transformers and tokenizers raise many types for files they cannot use
        raise InputError(f"model '{model}': cannot be loaded ({type(error).__name__}: {first_line(error)})") from None
