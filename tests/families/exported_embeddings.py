"""The embedding of an exported model directory as each of its three loaders gives it: plain `transformers` (pooled as
`cse_config.json` declares), `sentence_transformers.SentenceTransformer` and `cse.load_model`."""

import json
from pathlib import Path

import torch
from torch import Tensor
from transformers import AutoModel, AutoTokenizer

import cse

# Lengths differ (padding is masked out), and the corpus's words meet unseen ones (pieces and unknown characters).
SENTENCES = [
    "A farmer writes a shopping list at dusk.",
    "There is a lady painting a wall in the garden on a rainy afternoon.",
    "a girl",
    "Zoë's café, déjà vu!",
]
LOADERS = ("transformers", "sentence-transformers", "cse")


def _mean(states: Tensor, mask: Tensor) -> Tensor:
    """Mean of the real tokens' states, (B, L, H), (B, L) -> (B, H)."""
    weights = mask.unsqueeze(-1).to(states.dtype)  # (B, L) -> (B, L, 1)
    return (states * weights).sum(dim=1) / weights.sum(dim=1)


def transformers_embeddings(model_dir: Path, sentences: list[str]) -> Tensor:
    """What a transformers user computes from `AutoModel`'s output, following `cse_config.json`'s `embedding`."""
    embedding = json.loads((model_dir / "cse_config.json").read_text())["embedding"]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model, info = AutoModel.from_pretrained(model_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    batch = tokenizer(sentences, padding=True, truncation=True, return_tensors="pt")  # as the model card's snippet
    with torch.no_grad():
        output = model.eval()(**batch, output_hidden_states=True)
    layers, mask = output.hidden_states, batch["attention_mask"]
    if embedding == "pooler_output":
        return output.pooler_output
    if embedding in ("cls", "cls_before_pooler"):
        return output.last_hidden_state[:, 0]
    last_layers = {
        "avg": output.last_hidden_state,
        "avg_top2": (layers[-2] + layers[-1]) / 2,
        "avg_first_last": (layers[1] + layers[-1]) / 2,
    }
    return _mean(last_layers[embedding], mask)


def loader_embeddings(model_dir: Path, sentences: list[str] = SENTENCES) -> dict[str, Tensor]:
    """`{loader: (N, H) embeddings}` of the directory, for each of `LOADERS`."""
    from sentence_transformers import SentenceTransformer

    st_model = SentenceTransformer(str(model_dir), device="cpu")
    return {
        "transformers": transformers_embeddings(model_dir, sentences),
        "sentence-transformers": st_model.encode(sentences, convert_to_tensor=True),
        "cse": cse.load_model(model_dir, device="cpu").encode(sentences, convert_to="torch"),
    }


def assert_loaders_give(expected: Tensor, model_dir: Path, sentences: list[str] = SENTENCES) -> None:
    """Every loader's embedding equals `expected` within 1e-5."""
    for loader, embeddings in loader_embeddings(model_dir, sentences).items():
        torch.testing.assert_close(
            embeddings, expected, atol=1e-5, rtol=0, msg=lambda m, loader=loader: f"{loader}: {m}"
        )
