"""cse: sentence embeddings with contrastive learning (SimCSE) on PyTorch Lightning.

The inference API is imported on first use (PEP 562), so `import cse.models.poolers` and the other pure-torch
pieces stay free of transformers.
"""

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cse.inference.api import EmbeddingModel, load_model
    from cse.inference.search import SearchHit

__all__ = ["SearchHit", "EmbeddingModel", "load_model"]
_EXPORTS = {
    "SearchHit": "cse.inference.search",
    "EmbeddingModel": "cse.inference.api",
    "load_model": "cse.inference.api",
}


def __getattr__(name: str) -> object:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'cse' has no attribute {name!r}")
