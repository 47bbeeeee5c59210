"""The Python API: load a trained model, embed sentences, compare them, and search a corpus.

    from cse import load_model

    model = load_model("runs/quickstart/version_0/best_model")  # or a .ckpt, or a hub id with pooler_type
    embeddings = model.encode(["A man is playing a guitar.", "A dog runs."])  # numpy float32 (2, H)
    model.build_index(corpus)
    hits = model.search(["Someone plays music."], top_k=5)  # per query: [SearchHit(corpus_id, score, sentence)]

Embeddings are exactly those of `cse eval` and of the exported model in transformers and sentence-transformers:
the same `SentenceEncoder` forward in eval mode (`cse.inference.loading`). A model trained with Matryoshka
(`model.matryoshka_dims`) can be truncated: `load_model(path, truncate_dim=64)` keeps the first 64 coordinates of
every embedding, normalized after truncation where normalized (cosine similarity, search), as sentence-transformers'
`SentenceTransformer(path, truncate_dim=64)` does.
"""

from numbers import Integral
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from cse.errors import InputError
from cse.inference.arguments import cosine_threshold, positive_int, torch_device
from cse.inference.loading import encode_sentences, load_encoder
from cse.inference.search import Backend, EmbeddingIndex, SearchHit
from cse.models.encoder import SentenceEncoder
from cse.models.poolers import PoolerType

ConvertTo = Literal["numpy", "torch"]
CHUNK_BATCHES = 32  # sentences are length-sorted within chunks of 32 batches; progress advances per chunk


class EmbeddingModel:
    """A sentence encoder ready for inference: `encode`, `similarity`, `build_index` and `search`.

    Args:
        encoder: a `SentenceEncoder` (put in eval mode here).
        tokenizer: its tokenizer.
        device: where to run; None picks CUDA when available, else Apple's MPS, else the CPU.
        truncate_dim: keep the first `truncate_dim` coordinates of every embedding (a Matryoshka model's prefix);
            None keeps all H.
    """

    def __init__(
        self,
        encoder: SentenceEncoder,
        tokenizer: PreTrainedTokenizerBase,
        device: str | torch.device | int | None = None,
        truncate_dim: int | None = None,
    ) -> None:
        self.device = torch_device(device)
        self.encoder = encoder.eval().to(self.device)
        self.tokenizer = tokenizer
        self.truncate_dim = _checked_truncate_dim(truncate_dim, self.hidden_size)
        self.index: EmbeddingIndex | None = None
        self.corpus: list[str] = []

    @property
    def hidden_size(self) -> int:
        """Size of the encoder's full embedding, H."""
        return self.encoder.backbone.config.hidden_size

    @property
    def dimension(self) -> int:
        """Size of one embedding: `truncate_dim`, or H."""
        return self.truncate_dim or self.hidden_size

    def encode(
        self,
        sentences: str | list[str],
        batch_size: int = 64,
        normalize: bool = False,
        device: str | torch.device | int | None = None,
        progress: bool = False,
        convert_to: ConvertTo = "numpy",
        truncate_dim: int | None = None,
    ) -> np.ndarray | Tensor:
        """Embeddings (N, D) in float32, in the order of `sentences`; (D,) for a single string. D = `truncate_dim`,
        else the model's `truncate_dim`, else H.

        Args:
            sentences: a sentence or a list of them; each is encoded whole (truncated at the model's limit only, or
                where a sentence-transformers directory's `max_seq_length` says).
            batch_size: sentences per forward pass.
            normalize: L2-normalise each embedding, after truncation (then dot product is cosine similarity).
            device: where to run this call (`cpu`, `cuda`, `cuda:1`, an int N for `cuda:N`); None: the model's.
            progress: show a progress bar.
            convert_to: `numpy` for an `np.ndarray`, `torch` for a CPU `Tensor`.
            truncate_dim: keep the first `truncate_dim` coordinates for this call; None: the model's `truncate_dim`.
        """
        dimension = _checked_truncate_dim(truncate_dim, self.hidden_size) or self.dimension
        single = isinstance(sentences, str)
        sentences = _sentence_list(sentences, "sentences")
        batch_size = positive_int(batch_size, "batch_size")
        device = self.device if device is None else torch_device(device)
        _check_convert_to(convert_to)
        chunk = batch_size * CHUNK_BATCHES
        parts = []
        with tqdm(total=len(sentences), unit="sentence", disable=not progress) as bar:
            for start in range(0, len(sentences), chunk):
                part = sentences[start : start + chunk]
                parts.append(encode_sentences(self.encoder, self.tokenizer, part, batch_size, device=device))
                bar.update(len(part))
        embeddings = torch.cat(parts) if parts else torch.empty(0, self.hidden_size)  # (N, H)
        if dimension < self.hidden_size:  # Matryoshka: truncated first, then normalized, as in sentence-transformers
            embeddings = embeddings[:, :dimension].contiguous()  # (N, H) -> (N, D)
        if normalize:
            embeddings = F.normalize(embeddings, dim=-1)
        if single:
            embeddings = embeddings[0]  # (1, D) -> (D,)
        return embeddings.numpy() if convert_to == "numpy" else embeddings

    def similarity(
        self, a: str | list[str], b: str | list[str], batch_size: int = 64, convert_to: ConvertTo = "numpy"
    ) -> np.ndarray | Tensor:
        """Cosine similarities (len(a), len(b)) between two lists of sentences (a string counts as a list of one)."""
        _check_convert_to(convert_to)
        first = self.encode(_sentence_list(a, "a"), batch_size, normalize=True, convert_to="torch")
        second = self.encode(_sentence_list(b, "b"), batch_size, normalize=True, convert_to="torch")
        scores = first @ second.T  # (A, D) x (B, D) -> (A, B)
        return scores.numpy() if convert_to == "numpy" else scores

    def build_index(
        self, sentences: list[str], batch_size: int = 64, backend: Backend = "auto", progress: bool = False
    ) -> None:
        """Embed a corpus for `search`: faiss when installed (`backend="auto"`), exact torch search otherwise.

        `sentences` is a list: a bare string (a whole file's text, say) is refused, not indexed as one sentence.
        """
        if isinstance(sentences, str):
            raise InputError("corpus: expected a list of sentences, got one string (index one sentence as [sentence])")
        corpus = _sentence_list(sentences, "corpus")
        if not corpus:
            raise InputError("corpus: no sentences to index")
        embeddings = self.encode(corpus, batch_size, progress=progress, convert_to="torch")
        self.index = EmbeddingIndex(embeddings, backend)
        self.corpus = corpus

    def search(
        self, queries: str | list[str], top_k: int = 10, threshold: float | None = None, batch_size: int = 64
    ) -> list[list[SearchHit]]:
        """For each query, its `top_k` nearest corpus sentences by cosine similarity, best first.

        Args:
            queries: a query or a list of them (a single string still gives a list with one result list).
            top_k: neighbours per query (fewer if the corpus is smaller).
            threshold: keep only hits with cosine similarity >= threshold, a number in [-1, 1].
            batch_size: queries per forward pass.
        """
        if self.index is None:
            raise InputError("search: no corpus indexed; call build_index(sentences) first")
        top_k, threshold = positive_int(top_k, "top_k"), cosine_threshold(threshold)
        embeddings = self.encode(_sentence_list(queries, "queries"), batch_size, convert_to="torch")
        return [
            [SearchHit(hit.corpus_id, hit.score, self.corpus[hit.corpus_id]) for hit in hits]
            for hits in self.index.search(embeddings, top_k, threshold)
        ]


def load_model(
    model: str | Path,
    pooler_type: PoolerType | None = None,
    device: str | torch.device | int | None = None,
    truncate_dim: int | None = None,
) -> EmbeddingModel:
    """Load a model for inference.

    Args:
        model: a `cse` export directory, any Hugging Face model directory or hub id, or a `cse` checkpoint (`.ckpt`).
        pooler_type: how to pool; None uses the one the model was trained with, or a sentence-transformers
            directory's `Pooling` (required for other models: `cls`, `cls_before_pooler`, `avg`, `avg_top2` or
            `avg_first_last`).
        device: where to run; None picks CUDA when available, else Apple's MPS, else the CPU.
        truncate_dim: embed with the first `truncate_dim` coordinates only, for a model trained with Matryoshka
            (its `cse_config.json` lists the trained dimensions); None: the whole embedding.
    """
    _checked_truncate_dim(truncate_dim, None)  # before the slow part
    torch_device(device)
    encoder, tokenizer = load_encoder(model, pooler_type)
    return EmbeddingModel(encoder, tokenizer, device, truncate_dim)


def _checked_truncate_dim(truncate_dim: int | None, hidden_size: int | None) -> int | None:
    """`truncate_dim` if it is None or an integer in [1, hidden_size]; else one line (hidden_size None: >= 1 only)."""
    if truncate_dim is None:
        return None
    if isinstance(truncate_dim, bool) or not isinstance(truncate_dim, Integral) or truncate_dim < 1:
        raise InputError(f"truncate_dim: must be a whole number >= 1 (or None: no truncation), got {truncate_dim!r}")
    if hidden_size is not None and truncate_dim > hidden_size:
        raise InputError(f"truncate_dim: {truncate_dim} is larger than the model's {hidden_size}-dimensional embedding")
    return int(truncate_dim)


def _check_convert_to(convert_to: object) -> None:
    if convert_to not in ("numpy", "torch"):
        raise InputError(f"convert_to '{convert_to}': choose numpy or torch")


def _sentence_list(sentences: str | list[str], name: str) -> list[str]:
    if isinstance(sentences, str):
        return [sentences]
    if not isinstance(sentences, list | tuple):
        raise InputError(f"{name}: expected a string or a list of strings, got {type(sentences).__name__}")
    for index, sentence in enumerate(sentences):
        if not isinstance(sentence, str):
            raise InputError(f"{name}[{index}]: expected a string, got {type(sentence).__name__} {sentence!r:.40}")
    return list(sentences)
