"""One table: what an export holds for each training pooler, and how the embedding is read back from it.

An encoder trained with a pooler (and `mlp_only_train`) is exported so that three loaders give its eval-mode
embedding: `cse` reads `cse_config.json`, sentence-transformers its module files, transformers users the model card's
snippet. Adding a pooler means a row here (and its computation in `cse.models.poolers`).

`cse_config.json` also records `matryoshka_dims`: the prefixes of the embedding trained to embed on their own
(`model.matryoshka_dims`), null for a model trained without Matryoshka. Any prefix can be taken at inference
(`truncate_dim` in `cse.load_model` and sentence-transformers); these are the ones trained, and validated.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cse.errors import InputError
from cse.models.encoder import SentenceEncoder
from cse.models.poolers import POOLER_TYPES, PoolerType, inference_pooler, uses_mlp
from cse.models.prompt_template import PromptSettings

CSE_CONFIG_NAME = "cse_config.json"


@dataclass(frozen=True)
class ExportedPooling:
    """How the embedding of one training pooler is exported.

    Attributes:
        embedding: `cse_config.json`'s `embedding`: `pooler_output` (the trained MLP stored as the model's pooler) or
            the pooler that computes the embedding from `AutoModel`'s output (`cse.models.poolers.inference_pooler`).
        description: one sentence for `cse_config.json` and the model card.
        sentence_transformers_mode: `Pooling`'s mode, `cls` or `mean`; a kept MLP adds a `Dense` (Linear + Tanh).
        all_layers: the embedding reads more layers than the last (transformers' `output_hidden_states`; a
            `WeightedLayerPooling` module in sentence-transformers).
        transformers_snippet: lines computing `embeddings` from `output` (and `batch`) for the model card.
    """

    embedding: str
    description: str
    sentence_transformers_mode: str
    all_layers: bool
    transformers_snippet: tuple[str, ...]


def _masked_mean(states: str) -> tuple[str, ...]:
    """The card's lines for the mean of `states` over real tokens."""
    return (
        "mask = batch['attention_mask'].unsqueeze(-1).float()  # mean over real tokens only",
        f"embeddings = ({states} * mask).sum(1) / mask.sum(1)",
    )


_CLS_STATE = ("embeddings = output.last_hidden_state[:, 0]  # [CLS]",)
_CLS_BEFORE_MLP = ExportedPooling(
    "cls",
    "the [CLS] token's last hidden state, before the MLP: the MLP was used in training only (`mlp_only_train`, "
    "SimCSE §3) and is not exported, so `pooler_output` is not the embedding",
    "cls",
    False,
    _CLS_STATE,
)
# Keyed by (training pooler, MLP kept at inference).
EXPORTED_POOLING: dict[tuple[str, bool], ExportedPooling] = {
    ("cls", True): ExportedPooling(
        "pooler_output",
        "the trained MLP (Linear + Tanh) over the [CLS] token's last hidden state, stored as the model's own pooler: "
        "transformers' `pooler_output`",
        "cls",
        False,
        ("embeddings = output.pooler_output  # the trained MLP over [CLS] is the model's pooler",),
    ),
    ("cls", False): _CLS_BEFORE_MLP,
    ("cls_before_pooler", False): ExportedPooling(
        "cls_before_pooler",
        "the [CLS] token's last hidden state (`last_hidden_state[:, 0]`)",
        "cls",
        False,
        _CLS_STATE,
    ),
    ("avg", False): ExportedPooling(
        "avg",
        "the mean of the last layer's token states over real (non-padding) tokens",
        "mean",
        False,
        _masked_mean("output.last_hidden_state"),
    ),
    ("avg_top2", False): ExportedPooling(
        "avg_top2",
        "the mean over real tokens of (hidden_states[-2] + hidden_states[-1]) / 2, the last two layers",
        "mean",
        True,
        _masked_mean("(output.hidden_states[-2] + output.hidden_states[-1]) / 2"),
    ),
    ("avg_first_last", False): ExportedPooling(
        "avg_first_last",
        "the mean over real tokens of (hidden_states[1] + hidden_states[-1]) / 2, the first transformer layer and "
        "the last",
        "mean",
        True,
        _masked_mean("(output.hidden_states[1] + output.hidden_states[-1]) / 2"),
    ),
    ("prompt", False): ExportedPooling(
        "prompt",
        "the last hidden state at the [MASK] of the sentence put inside the template in `cse_config.json`'s `prompt` "
        "(PromptBERT, Jiang et al., 2022; a period appended to a sentence that does not end in one, ?, a quote or an "
        "apostrophe, as its test does), minus the template's own [MASK] state when `template_denoising` is true; "
        "it needs cse to load",
        "none",
        False,
        (),
    ),
}


def exported_pooling(encoder: SentenceEncoder) -> ExportedPooling:
    """The row of `encoder`'s pooler (and whether its MLP is kept at inference)."""
    return EXPORTED_POOLING[(encoder.pooler_type, uses_mlp(encoder.pooler_type, encoder.mlp_only_train, False))]


def pooling_config(encoder: SentenceEncoder, matryoshka_dims: Sequence[int] | None = None) -> dict:
    """The content of `cse_config.json`: the training pooler, where the exported embedding is, and the Matryoshka
    dimensions it was trained with (None: without)."""
    row = exported_pooling(encoder)
    return {
        "pooler_type": encoder.pooler_type,
        "mlp_only_train": encoder.mlp_only_train,
        "embedding": row.embedding,
        "description": row.description,
        "matryoshka_dims": None if matryoshka_dims is None else [int(d) for d in matryoshka_dims],
        "prompt": None if encoder.prompt is None else exported_prompt(encoder),
    }


def exported_prompt(encoder: SentenceEncoder) -> dict:
    """`cse_config.json`'s `prompt`: the inference template and whether the template's state is subtracted."""
    return {"template": encoder.prompt.template_text, "template_denoising": encoder.prompt.denoising_at_inference}


def read_exported_prompt(model: str) -> PromptSettings | None:
    """The inference prompt settings of the export at `model` (None: not a PromptBERT model)."""
    config = json.loads((Path(model).expanduser() / CSE_CONFIG_NAME).read_text(encoding="utf-8"))
    prompt = config.get("prompt")
    if not isinstance(prompt, dict) or not isinstance(prompt.get("template"), str):
        raise InputError(f"model '{model}': {CSE_CONFIG_NAME} has pooler 'prompt' but no prompt template")
    return PromptSettings(prompt["template"], denoising_at_inference=bool(prompt.get("template_denoising")))


def read_exported_pooler(model: str) -> PoolerType:
    """The `cse` pooler that gives the embedding of the export at `model`, from its `cse_config.json`."""
    config_path = Path(model).expanduser() / CSE_CONFIG_NAME
    if not config_path.is_file():
        raise InputError(
            f"model '{model}': no {CSE_CONFIG_NAME}; say how to pool with --pooler ({', '.join(POOLER_TYPES)})"
        )
    config = json.loads(config_path.read_text(encoding="utf-8"))  # valid JSON: checked with the model directory
    embedding = config.get("embedding") if isinstance(config, dict) else None
    poolers = {
        row.embedding: inference_pooler(pooler_type, mlp_only_train=not mlp_kept)
        for (pooler_type, mlp_kept), row in EXPORTED_POOLING.items()
    }
    if embedding not in poolers:
        raise InputError(
            f"model '{model}': {CSE_CONFIG_NAME} has no valid 'embedding' ({embedding!r}); say how to pool with "
            f"--pooler ({', '.join(POOLER_TYPES)})"
        )
    return poolers[embedding]
