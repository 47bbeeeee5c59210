"""Hard negatives for (anchor, positive) pairs: corpus sentences that a model ranks near the anchor, less similar than
the positive, as sentence-transformers' `mine_hard_negatives` mines them (its option names where they mean the same).

For each anchor, with s- = cos(anchor, candidate) and s+ = cos(anchor, positive), the lowest of the anchor's pairs
(sentence-transformers' rule: a candidate above any of its positives may be a positive), chosen once for all its pairs:

1. **Candidates**: of the nearest `range_max` + P corpus sentences (P: the most pairs any anchor has, room for its
   positives), those that are neither the anchor itself nor a positive of the anchor (of any pair with it); texts,
   the corpus's duplicates kept once, are compared as `normalize_text` writes them (NFKC, case-folded, whitespace
   collapsed). sentence-transformers leaves out the positives only, compared exactly (README: the differences).
2. **Score filters** (each optional): `margin`: s- <= s+ - margin; `relative_margin`: s- <= s+ - |s+| * relative_margin
   (0.05: the NV-Retriever paper's "95% of the positive"); `max_score`: s- <= max_score; `min_score`: s- >= min_score.
3. **Rank window**: the candidates that pass, sorted by s-, rank 0 the nearest; ranks `range_min <= r < range_max`
   stay: `range_min` skips the nearest that pass the filters, as in sentence-transformers.
4. **Choice**: `num_negatives` of the window, the nearest (`top`) or drawn at random (`random`, seeded), best first;
   fewer when fewer are left.

Memory: the corpus embeddings (N, H) in float32, computed `chunk_size` sentences at a time into one buffer and searched
in place; anchors are mined `chunk_size` at a time, each chunk searched against the whole corpus in blocks
(`cse.inference.search`), and yielded, so the caller can write them as they come.
"""

import math
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor
from tqdm.auto import tqdm

from cse.data.text_identity import normalize_text
from cse.errors import InputError
from cse.inference.api import EmbeddingModel
from cse.inference.search import Backend, EmbeddingIndex

SamplingStrategy = Literal["top", "random"]
SCORE_FILTERS = ("margin", "relative_margin", "max_score", "min_score")
CANDIDATES_PER_NEGATIVE = 10  # the rank window a filter gets by default: sentence-transformers' 10
WIDENING_FILTERS = ("margin", "relative_margin", "max_score")  # those sentence-transformers widens it for
NEIGHBOURS_PER_CHUNK = 2**20  # (anchor, neighbour) scores held at once, also as Python lists: 16384 anchors x 64


@dataclass(frozen=True)
class MiningSettings:
    """Which candidates become hard negatives (the module docstring says how each is used).

    Args:
        range_min: first rank of the window (0: the nearest candidate).
        range_max: end of the window (exclusive); None: `range_min + num_negatives` (ten times as many negatives
            with a margin, relative margin or max score) + the most pairs an anchor has: sentence-transformers' rule.
        num_negatives: negatives per pair at most.
        margin: keep s- <= s+ - margin.
        relative_margin: keep s- <= s+ - |s+| * relative_margin.
        max_score: keep s- <= max_score.
        min_score: keep s- >= min_score.
        sampling_strategy: `top` (the nearest that pass) or `random` (drawn from those that pass).
        seed: seed of the random choice.
    """

    range_min: int = 0
    range_max: int | None = None
    num_negatives: int = 1
    margin: float | None = None
    relative_margin: float | None = None
    max_score: float | None = None
    min_score: float | None = None
    sampling_strategy: SamplingStrategy = "top"
    seed: int = 0

    def window_end(self, most_pairs: int = 0) -> int:
        """`range_max`, or its default for pairs in which an anchor has at most `most_pairs` pairs."""
        if self.range_max is not None:
            return self.range_max
        widening = any(getattr(self, name) is not None for name in WIDENING_FILTERS)
        return self.range_min + self.num_negatives * (CANDIDATES_PER_NEGATIVE if widening else 1) + most_pairs

    def check(self, name: Callable[[str], str] = str) -> None:
        """Raise `InputError` for a setting out of its range; `name` turns a field name into what the message says."""
        if self.range_min < 0:
            raise InputError(f"{name('range_min')}: must be at least 0, got {self.range_min}")
        if self.range_max is not None and self.range_max <= self.range_min:
            raise InputError(
                f"{name('range_max')}: must be above {name('range_min')} ({self.range_min}), got {self.range_max}"
            )
        if self.num_negatives < 1:
            raise InputError(f"{name('num_negatives')}: must be at least 1, got {self.num_negatives}")
        window = self.window_end() - self.range_min
        if self.num_negatives > window:
            raise InputError(
                f"{name('num_negatives')}: {self.num_negatives} negatives cannot come from the {window} ranks "
                f"{self.range_min} to {self.range_min + window - 1}; raise {name('range_max')} or lower "
                f"{name('num_negatives')}"
            )
        bounds = {"margin": (0.0, 2.0), "relative_margin": (0.0, 1.0), "max_score": (-1.0, 1.0), "min_score": (-1, 1)}
        for key, (low, high) in bounds.items():
            value = getattr(self, key)
            if value is not None and not (math.isfinite(value) and low <= value <= high):
                hint = " (0.05 keeps negatives 5% below the positive)" if key == "relative_margin" else ""
                raise InputError(f"{name(key)}: must be a number from {low:g} to {high:g}{hint}, got {value}")
        if self.max_score is not None and self.min_score is not None and self.min_score >= self.max_score:
            raise InputError(
                f"{name('min_score')}: must be below {name('max_score')} ({self.max_score}), got {self.min_score}"
            )
        if self.sampling_strategy not in ("top", "random"):
            raise InputError(f"{name('sampling_strategy')}: choose top or random, got '{self.sampling_strategy}'")

    def first_failed_filter(self, negative: float, positive: float) -> str | None:
        """The first score filter that refuses a candidate scoring `negative` for a pair whose positive scores
        `positive`, or None when all keep it."""
        if self.margin is not None and negative > positive - self.margin:
            return "margin"
        if self.relative_margin is not None and negative > positive - abs(positive) * self.relative_margin:
            return "relative_margin"
        if self.max_score is not None and negative > self.max_score:
            return "max_score"
        if self.min_score is not None and negative < self.min_score:
            return "min_score"
        return None


@dataclass(frozen=True)
class MinedPair:
    """One pair and its hard negatives (corpus sentence, cosine similarity to the anchor), best first."""

    anchor: str
    positive: str
    positive_score: float
    negatives: list[tuple[str, float]]


@dataclass
class MiningCounts:
    """What mining saw: distinct pairs, those given a negative, negatives, score sums, what each filter refused."""

    pairs: int = 0
    pairs_with_negatives: int = 0
    negatives: int = 0
    positive_score_sum: float = 0.0
    negative_score_sum: float = 0.0
    refused: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SCORE_FILTERS, 0))

    def add(self, pair: MinedPair) -> None:
        self.pairs += 1
        self.pairs_with_negatives += bool(pair.negatives)
        self.negatives += len(pair.negatives)
        self.positive_score_sum += pair.positive_score
        self.negative_score_sum += sum(score for _, score in pair.negatives)


class HardNegativeMiner:
    """A corpus embedded and indexed once, from which `mine` draws hard negatives for pairs.

    Args:
        model: the embedding model (`cse.load_model`).
        corpus: candidate sentences; duplicates (by `normalize_text`) are kept once, the first.
        settings: the rank window, filters and choice; checked here.
        batch_size: sentences per forward pass.
        chunk_size: corpus sentences embedded, and anchors mined, at a time.
        backend: exact search by `faiss`, `torch`, or `auto` (faiss when installed).
        progress: show progress bars.
    """

    def __init__(
        self,
        model: EmbeddingModel,
        corpus: list[str],
        settings: MiningSettings | None = None,
        batch_size: int = 64,
        chunk_size: int = 16384,
        backend: Backend = "auto",
        progress: bool = False,
    ) -> None:
        self.settings = settings or MiningSettings()
        self.settings.check()
        if batch_size < 1 or chunk_size < 1:
            raise InputError(f"batch_size and chunk_size: must be at least 1, got {batch_size} and {chunk_size}")
        self.model, self.batch_size, self.chunk_size, self.progress = model, batch_size, chunk_size, progress
        self.ids: dict[str, int] = {}  # normalized text -> corpus row
        self.corpus: list[str] = []
        for sentence in corpus:
            if self.ids.setdefault(normalize_text(sentence), len(self.corpus)) == len(self.corpus):
                self.corpus.append(sentence)
        if not self.corpus:
            raise InputError("corpus: no sentences")
        self.exact_ids = {sentence: row for row, sentence in enumerate(self.corpus)}  # to reuse their embeddings
        self.index = EmbeddingIndex(self._embed_corpus(), backend)
        self.counts = MiningCounts()

    def mine(self, anchors: list[str], positives: list[str]) -> Iterator[MinedPair]:
        """Each distinct pair with its hard negatives, the pairs of an anchor together where the anchor first comes;
        `counts` adds them up as they come. An anchor's negatives are chosen once, for all its pairs, against its
        lowest positive score (sentence-transformers' rule: a candidate closer than any positive may be one)."""
        if len(anchors) != len(positives):
            raise InputError(f"pairs: {len(anchors)} anchors but {len(positives)} positives")
        groups: dict[str, dict[str, None]] = {}  # anchor -> its distinct positives, in order
        excluded: dict[str, set[int]] = {}  # normalized anchor -> corpus rows of the anchor and its positives
        for anchor, positive in zip(anchors, positives, strict=True):
            groups.setdefault(anchor, {})[positive] = None
            rows = excluded.setdefault(normalize_text(anchor), set())
            rows.update(row for text in (anchor, positive) if (row := self.ids.get(normalize_text(text))) is not None)
        most_pairs = max(Counter(anchors).values(), default=0)  # every row counts, as sentence-transformers counts
        end = self.settings.window_end(most_pairs)
        return self._mine(groups, excluded, end, end + most_pairs)

    def _mine(
        self, groups: dict[str, dict[str, None]], excluded: dict[str, set[int]], end: int, nearest: int
    ) -> Iterator[MinedPair]:
        """`end`: the window's end; `nearest`: how many nearest corpus rows hold an anchor's candidates. Fewer anchors
        than `chunk_size` at a time when `nearest` is large (an anchor with many pairs makes it so for all)."""
        rng = random.Random(self.settings.seed)
        anchors = list(groups)
        size = max(1, min(self.chunk_size, NEIGHBOURS_PER_CHUNK // nearest))
        with tqdm(total=len(anchors), unit="anchor", desc="Mining", disable=not self.progress) as bar:
            for start in range(0, len(anchors), size):
                chunk = anchors[start : start + size]
                for pair in self._mine_chunk(chunk, groups, excluded, end, nearest, rng):
                    self.counts.add(pair)
                    yield pair
                bar.update(len(chunk))

    def _mine_chunk(
        self,
        anchors: list[str],
        groups: dict[str, dict[str, None]],
        excluded: dict[str, set[int]],
        end: int,
        nearest: int,
        rng: random.Random,
    ) -> Iterator[MinedPair]:
        keys = [normalize_text(anchor) for anchor in anchors]
        anchor_vectors = self._vectors(anchors)  # (U, H)
        scores, ids = self.index.top_k(anchor_vectors, nearest)  # (U, nearest), (U, nearest)
        positives = [positive for anchor in anchors for positive in groups[anchor]]
        owners = torch.tensor([row for row, anchor in enumerate(anchors) for _ in groups[anchor]])
        positive_scores = (anchor_vectors[owners] * self._vectors(positives)).sum(dim=-1).tolist()  # (P, H) -> (P,)
        start = 0
        for anchor, key, row_ids, row_scores in zip(anchors, keys, ids.tolist(), scores.tolist(), strict=True):
            own = positive_scores[start : start + len(groups[anchor])]
            start += len(own)
            candidates = [
                (row, score) for row, score in zip(row_ids, row_scores, strict=True) if row not in excluded[key]
            ]
            negatives = self._choose(candidates, min(own), end, rng)
            for positive, positive_score in zip(groups[anchor], own, strict=True):
                yield MinedPair(anchor, positive, positive_score, negatives)

    def _choose(
        self, candidates: list[tuple[int, float]], positive_score: float, end: int, rng: random.Random
    ) -> list[tuple[str, float]]:
        """The negatives of an anchor whose lowest positive scores `positive_score`, from its (row, score) candidates,
        best first: those that pass the filters, ranked, `range_min` to `end` - 1, then the choice."""
        settings, kept = self.settings, []
        for candidate, score in candidates:
            refused = settings.first_failed_filter(score, positive_score)
            if refused is None:
                kept.append((self.corpus[candidate], score))
            else:
                self.counts.refused[refused] += 1
        kept = kept[settings.range_min : end]
        if settings.sampling_strategy == "random" and len(kept) > settings.num_negatives:
            kept = [kept[i] for i in sorted(rng.sample(range(len(kept)), settings.num_negatives))]
        return kept[: settings.num_negatives]

    def _vectors(self, sentences: list[str]) -> Tensor:
        """Unit embeddings (S, H) of `sentences`: a corpus sentence's from the index, the others encoded."""
        vectors = torch.empty(len(sentences), self.model.dimension)
        new = [i for i, sentence in enumerate(sentences) if sentence not in self.exact_ids]
        known = [i for i, sentence in enumerate(sentences) if sentence in self.exact_ids]
        if known:
            vectors[known] = self.index.embeddings[[self.exact_ids[sentences[i]] for i in known]]
        if new:
            texts = [sentences[i] for i in new]
            vectors[new] = self.model.encode(texts, self.batch_size, normalize=True, convert_to="torch")
        return vectors

    def _embed_corpus(self) -> Tensor:
        """Unit embeddings (N, H) of the corpus, filled `chunk_size` sentences at a time into one buffer."""
        embeddings = torch.empty(len(self.corpus), self.model.dimension)
        with tqdm(total=len(self.corpus), unit="sentence", desc="Corpus", disable=not self.progress) as bar:
            for start in range(0, len(self.corpus), self.chunk_size):
                part = self.corpus[start : start + self.chunk_size]
                embeddings[start : start + len(part)] = self.model.encode(
                    part, self.batch_size, normalize=True, convert_to="torch"
                )
                bar.update(len(part))
        return embeddings
