"""The sentence-transformers files of an export: `SentenceTransformer(dir).encode(x)` gives `cse`'s embedding of x.

Every pooler maps onto sentence-transformers' built-in modules, so loading needs no `trust_remote_code`:

| `cse` pooler | modules after `Transformer` |
|---|---|
| `cls` (MLP kept) | `Pooling` (cls) + `Dense` (Linear + Tanh holding the MLP weights) |
| `cls` with `mlp_only_train`, `cls_before_pooler` | `Pooling` (cls) |
| `avg` | `Pooling` (mean) |
| `avg_top2`, `avg_first_last` | `WeightedLayerPooling` (weight 1 on the two layers, 0 elsewhere) + `Pooling` (mean) |

`WeightedLayerPooling` divides by the sum of its weights, so weights 1 and 1 give (first + second) / 2, and
adding zero-weighted layers is exact. It reads every layer's states, which the `Transformer` module returns when
the model config says `output_hidden_states`: set through `config_args` in `sentence_bert_config.json`, not in the
exported `config.json`, so plain transformers users are unaffected. Written without importing
sentence-transformers (not a dependency of `cse`), in the layout that its versions 3 to 6 read.
"""

import json
from pathlib import Path

import torch
import transformers
from safetensors.torch import save_file
from transformers import PreTrainedTokenizerBase

from cse.export.pooling import exported_pooling
from cse.models.encoder import SentenceEncoder
from cse.models.loading import position_limit

MODULE_TYPE = "sentence_transformers.models.{}"  # the import path every sentence-transformers version resolves


def write_sentence_transformers_files(
    encoder: SentenceEncoder, tokenizer: PreTrainedTokenizerBase, directory: Path
) -> list[str]:
    """Write `modules.json`, `sentence_bert_config.json`, `config_sentence_transformers.json` and module folders.

    The model weights, config and tokenizer must be in `directory` already (the `Transformer` module reads them
    from the root).

    Returns:
        The module class names in order, e.g. `["Transformer", "Pooling", "Dense"]`.
    """
    config = encoder.backbone.config
    hidden_size = config.hidden_size
    pooling = exported_pooling(encoder)
    modules: list[tuple[str, dict, dict[str, torch.Tensor]]] = []  # (class name, config, weights)
    if pooling.all_layers:
        modules.append(
            ("WeightedLayerPooling", *_layer_weights(encoder.pooler_type, config.num_hidden_layers, hidden_size))
        )
    modules.append(("Pooling", _pooling_config(hidden_size, pooling.sentence_transformers_mode), {}))
    if pooling.embedding == "pooler_output":  # the MLP is kept: a Dense module holds it
        dense = encoder.mlp.dense
        modules.append(
            (
                "Dense",
                {
                    "in_features": dense.in_features,
                    "out_features": dense.out_features,
                    "bias": True,
                    "activation_function": "torch.nn.modules.activation.Tanh",  # MLPHead's activation
                },
                {"linear.weight": dense.weight, "linear.bias": dense.bias},
            )
        )

    entries = [{"idx": 0, "name": "0", "path": "", "type": MODULE_TYPE.format("Transformer")}]
    for index, (name, module_config, weights) in enumerate(modules, start=1):
        module_dir = directory / f"{index}_{name}"
        module_dir.mkdir()
        _write_json(module_dir / "config.json", module_config)
        if weights:
            tensors = {key: value.detach().cpu().contiguous() for key, value in weights.items()}
            save_file(tensors, module_dir / "model.safetensors")
        entries.append({"idx": index, "name": str(index), "path": module_dir.name, "type": MODULE_TYPE.format(name)})
    _write_json(directory / "modules.json", entries)
    _write_json(directory / "sentence_bert_config.json", _transformer_config(encoder, tokenizer))
    _write_json(
        directory / "config_sentence_transformers.json",
        {
            "model_type": "SentenceTransformer",
            "__version__": {"transformers": transformers.__version__, "pytorch": torch.__version__},
            "prompts": {},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",  # SimCSE trains and evaluates with cosine similarity
        },
    )
    return ["Transformer", *(name for name, _, _ in modules)]


def _layer_weights(pooler_type: str, num_layers: int, hidden_size: int) -> tuple[dict, dict[str, torch.Tensor]]:
    """`WeightedLayerPooling` over hidden_states[start:] (the embeddings output is hidden_states[0])."""
    # avg_top2: hidden_states[-2], [-1] = layers L-1, L; avg_first_last: layers 1 and L (cse.models.poolers.pool)
    start = num_layers - 1 if pooler_type == "avg_top2" else 1
    weights = torch.zeros(num_layers + 1 - start)
    weights[0] += 1.0
    weights[-1] += 1.0  # a 1-layer model: the same layer twice, (2 h) / 2 = h, as pool() gives
    config = {"word_embedding_dimension": hidden_size, "layer_start": start, "num_hidden_layers": num_layers}
    return config, {"layer_weights": weights}


def _pooling_config(hidden_size: int, mode: str) -> dict:
    # The pooling_mode_* flags rather than 6.x's `pooling_mode`: every version since 2 reads them.
    return {
        "word_embedding_dimension": hidden_size,
        "pooling_mode_cls_token": mode == "cls",
        "pooling_mode_mean_tokens": mode == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }


def _transformer_config(encoder: SentenceEncoder, tokenizer: PreTrainedTokenizerBase) -> dict:
    """Truncate where `cse` does: the tokenizer's limit, capped at the model's positions (`position_limit`)."""
    max_length = tokenizer.model_max_length
    max_positions = position_limit(encoder.backbone.config)
    if max_positions is not None:
        max_length = min(max_length, max_positions)
    config = {"max_seq_length": int(max_length), "do_lower_case": False}
    if exported_pooling(encoder).all_layers:
        config["config_args"] = {"output_hidden_states": True}
    return config


def _write_json(path: Path, content: dict | list) -> None:
    path.write_text(json.dumps(content, indent=2) + "\n")
