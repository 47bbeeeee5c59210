import math
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import torch

import cse.inference.hard_negatives
import cse.inference.search
from cse import load_model
from cse.data.text_identity import normalize_text
from cse.errors import InputError
from cse.inference.hard_negatives import HardNegativeMiner, MiningSettings


class TableModel:
    """Stands in for `EmbeddingModel`: each text's embedding is given, so what mining finds is computed by hand."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors
        self.dimension = len(next(iter(vectors.values())))
        self.encoded: list[str] = []

    def encode(self, sentences, batch_size=64, normalize=False, convert_to="numpy"):
        self.encoded += sentences
        embeddings = torch.tensor([self.vectors[sentence] for sentence in sentences], dtype=torch.float32)
        return torch.nn.functional.normalize(embeddings, dim=-1) if normalize else embeddings


def _at(degrees: float) -> list[float]:
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


# The anchor at 0 degrees; cos(anchor, x) is the cosine of x's angle. Its positive at 20 degrees scores cos 20 = 0.940.
ANGLES = {"a man": 0, "A  MAN": 0, "a guy": 20, "a male": 5, "c10": 10, "c30": 30, "c40": 40, "c60": 60, "c90": 90}
PAIRS = [("a man", "a guy"), ("a man", "a male")]  # one anchor, two positives
CORPUS = ["A  MAN", "c10", "a guy", "c30", "a male", "c40", "c60", "c90", "c30"]


def _mine(settings: MiningSettings, pairs=PAIRS, corpus=CORPUS, angles=ANGLES, **options) -> list[list[str]]:
    model = TableModel({text: _at(angle) for text, angle in angles.items()})
    miner = HardNegativeMiner(model, corpus, settings, **options)
    anchors, positives = [a for a, _ in pairs], [p for _, p in pairs]
    return [[text for text, _ in pair.negatives] for pair in miner.mine(anchors, positives)]


@pytest.mark.parametrize(
    ("settings", "first_pair"),
    [
        # The anchor's duplicate (A  MAN) and both its positives are never candidates; c10 is the nearest left.
        (MiningSettings(), ["c10"]),
        (MiningSettings(num_negatives=5, range_max=10), ["c10", "c30", "c40", "c60", "c90"]),  # c30 once
        # The nearest range_max + 2 (the anchor's two pairs): A  MAN, a male, c10, a guy, c30; rank 1 of what is left.
        (MiningSettings(range_min=1, range_max=3, num_negatives=2), ["c30"]),
        (MiningSettings(margin=0.0), ["c30"]),  # cos 30 <= cos 20; c10 scores above the positive
        (MiningSettings(margin=0.1, num_negatives=2), ["c40", "c60"]),  # <= 0.940 - 0.1
        (MiningSettings(relative_margin=0.05), ["c30"]),  # <= 0.940 - 0.047 = 0.893
        (MiningSettings(relative_margin=0.2), ["c60"]),  # <= 0.940 - 0.188 = 0.752: c40 (0.766) is refused too
        (MiningSettings(max_score=0.8, num_negatives=3), ["c40", "c60", "c90"]),
        (MiningSettings(min_score=0.6, num_negatives=5, range_max=10), ["c10", "c30", "c40"]),
        (MiningSettings(range_max=3, margin=0.0, num_negatives=2), ["c30"]),  # c10, c30 of the nearest 5; c10 refused
        (MiningSettings(range_min=1, range_max=6, margin=0.0), ["c40"]),  # range_min skips c30, the first that passes
    ],
)
def test_mined_negatives_are_the_hand_computed_ones(settings, first_pair):
    assert _mine(settings)[0] == first_pair


def test_an_anchors_pairs_are_filtered_against_its_lowest_positive():
    # s+ of (a man, a male) is cos 5 = 0.996, but a guy's cos 20 = 0.940 is the bound: c10 (0.985) is refused for both.
    assert _mine(MiningSettings(margin=0.0)) == [["c30"], ["c30"]]


def test_pairs_come_grouped_by_anchor_each_distinct_pair_once():
    pairs = [("a man", "a guy"), ("c10", "c30"), ("a man", "a guy"), ("a man", "a male"), ("c10", "c40")]
    model = TableModel({text: _at(angle) for text, angle in ANGLES.items()})
    miner = HardNegativeMiner(model, CORPUS, MiningSettings(), chunk_size=1)
    mined = [(pair.anchor, pair.positive) for pair in miner.mine([a for a, _ in pairs], [p for _, p in pairs])]
    assert mined == [("a man", "a guy"), ("a man", "a male"), ("c10", "c30"), ("c10", "c40")]


def test_relative_margin_lowers_the_threshold_for_a_negative_positive_score():
    # s+ = -0.5, relative margin 0.5: keep s- <= -0.5 - 0.25 = -0.75 (multiplying by 1 - margin would give -0.25).
    settings = MiningSettings(relative_margin=0.5)
    assert settings.first_failed_filter(-0.7, -0.5) == "relative_margin"
    assert settings.first_failed_filter(-0.76, -0.5) is None


def test_random_choice_draws_from_what_passes_best_first_and_is_seeded():
    corpus = [f"c{angle}" for angle in range(1, 90)]
    anchors = [f"a{i}" for i in range(20)]  # 20 anchors at 0 degrees: 20 draws
    angles = {**ANGLES, **{text: int(text[1:]) for text in corpus}, **dict.fromkeys(anchors, 0)}
    pairs = [(anchor, "a guy") for anchor in anchors]
    settings = MiningSettings(sampling_strategy="random", num_negatives=3, range_max=40, margin=0.0, seed=1)
    drawn = _mine(settings, pairs, corpus, angles)
    allowed = {f"c{angle}" for angle in range(20, 42)}  # nearest 40 + 1: c1..c41; margin 0 keeps c20..c41 (<= cos 20)
    for negatives in drawn:
        assert len(negatives) == 3 and set(negatives) <= allowed
        assert negatives == sorted(negatives, key=lambda text: int(text[1:]))  # best (smallest angle) first
    assert len({tuple(negatives) for negatives in drawn}) > 5
    assert _mine(settings, pairs, corpus, angles) == drawn
    assert _mine(MiningSettings(**{**settings.__dict__, "seed": 2}), pairs, corpus, angles) != drawn
    assert _mine(settings, pairs, corpus, angles, chunk_size=3) == drawn  # the draws do not depend on chunking


def test_chunked_mining_equals_unchunked(monkeypatch):
    generator = torch.Generator().manual_seed(0)
    texts = [f"s{i}" for i in range(120)]
    vectors = {text: row for text, row in zip(texts, torch.randn(120, 8, generator=generator).tolist(), strict=True)}
    pairs = [(f"s{i}", f"s{i + 40}") for i in range(40)] + [(f"s{i}", f"s{i + 80}") for i in range(0, 40, 3)]
    settings = MiningSettings(range_min=1, range_max=15, num_negatives=4, relative_margin=0.1)

    def mine(**options):
        model = TableModel(vectors)
        miner = HardNegativeMiner(model, texts[40:] + texts[:20], settings, **options)
        mined = list(miner.mine([a for a, _ in pairs], [p for _, p in pairs]))
        return [(pair.anchor, pair.positive, pair.negatives) for pair in mined], miner.counts

    whole, whole_counts = mine()
    searched = []  # (anchors, k) of each search
    top_k = cse.inference.search.EmbeddingIndex.top_k
    monkeypatch.setattr(
        cse.inference.search.EmbeddingIndex,
        "top_k",
        lambda self, q, k: searched.append((len(q), k)) or top_k(self, q, k),
    )
    monkeypatch.setattr(cse.inference.search, "QUERY_CHUNK", 3)
    monkeypatch.setattr(cse.inference.search, "CORPUS_CHUNK", 7)
    for chunk_size, neighbours in ((1, 2**20), (5, 2**20), (16, 2**20), (16, 50)):  # 50: 2 anchors of 15 + 2 at a time
        monkeypatch.setattr(cse.inference.hard_negatives, "NEIGHBOURS_PER_CHUNK", neighbours)
        chunked, counts = mine(chunk_size=chunk_size)
        assert [(a, p, [t for t, _ in n]) for a, p, n in chunked] == [(a, p, [t for t, _ in n]) for a, p, n in whole]
        for (*_, got), (*_, expected) in zip(chunked, whole, strict=True):
            assert [s for _, s in got] == pytest.approx([s for _, s in expected], abs=1e-6)
        assert (counts.pairs, counts.negatives, counts.refused) == (
            whole_counts.pairs,
            whole_counts.negatives,
            whole_counts.refused,
        )
    assert whole_counts.refused["relative_margin"] > 0 and whole_counts.negatives > 0
    assert searched[-1] == (2, 17)  # the last run: at most 50 scores at a time


def test_corpus_sentences_are_embedded_once():
    model = TableModel({text: _at(angle) for text, angle in ANGLES.items()})
    miner = HardNegativeMiner(model, CORPUS, MiningSettings())
    assert miner.corpus == ["A  MAN", "c10", "a guy", "c30", "a male", "c40", "c60", "c90"]
    encoded = len(model.encoded)
    list(miner.mine(["a man"], ["a guy"]))
    assert model.encoded[encoded:] == ["a man"]  # "a guy" is a corpus sentence: its embedding is reused


def test_default_window():
    assert MiningSettings().window_end(1) == 2  # room for the anchor's one positive
    assert MiningSettings(num_negatives=3, range_min=5).window_end(2) == 10
    assert MiningSettings(num_negatives=3, margin=0.0).window_end(1) == 31  # room for what the filter refuses
    assert MiningSettings(num_negatives=2, min_score=0.1, sampling_strategy="random").window_end(1) == 3
    assert MiningSettings(range_max=4).window_end(3) == 4


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (dict(range_min=-1), "range_min: must be at least 0, got -1"),
        (dict(range_min=3, range_max=3), r"range_max: must be above range_min \(3\), got 3"),
        (dict(num_negatives=0), "num_negatives: must be at least 1, got 0"),
        (dict(num_negatives=5, range_max=4), "5 negatives cannot come from the 4 ranks 0 to 3; raise range_max"),
        (dict(margin=-0.1), "margin: must be a number from 0 to 2, got -0.1"),
        (dict(margin=float("nan")), "margin: must be a number from 0 to 2, got nan"),
        (dict(relative_margin=5.0), r"relative_margin: must be a number from 0 to 1 \(0.05 keeps"),
        (dict(max_score=1.5), "max_score: must be a number from -1 to 1, got 1.5"),
        (dict(min_score=0.5, max_score=0.5), r"min_score: must be below max_score \(0.5\), got 0.5"),
        (dict(sampling_strategy="best"), "sampling_strategy: choose top or random, got 'best'"),
    ],
)
def test_settings_out_of_range_are_one_line(settings, message):
    with pytest.raises(InputError, match=message):
        MiningSettings(**settings).check()


def test_settings_messages_name_what_the_caller_names():
    with pytest.raises(InputError, match=r"^--range-max: must be above --range-min \(3\), got 2$"):
        MiningSettings(range_min=3, range_max=2).check(lambda name: "--" + name.replace("_", "-"))


# The tiny random model against a brute force: every cosine in float64, sorted, the rank window, the filters.
TOLERANCE = 1e-6  # float32 matmul against float64 sums; pairs with near ties at a boundary are checked loosely


@pytest.fixture(scope="module")
def mining_data(tiny_model_dir, tiny_data):
    model = load_model(tiny_model_dir, "avg", device="cpu")
    pairs = [line.split("\t")[:2] for line in Path(tiny_data.dev_file).read_text().splitlines()[1:]]
    corpus = Path(tiny_data.train_file).read_text().splitlines()
    pairs += [(pairs[0][0], corpus[5]), (pairs[1][0].upper(), corpus[7])]  # anchors with a second positive
    corpus += [pairs[2][0].upper(), " ".join(pairs[3][1].split()).replace(" ", "  "), corpus[9]]  # duplicates
    texts = list(dict.fromkeys([text for pair in pairs for text in pair] + corpus))
    with torch.no_grad():  # each sentence alone, as mining with batch_size 1 embeds it
        vectors = {text: model.encode(text, batch_size=1, normalize=True).astype(float).tolist() for text in texts}
    return model, pairs, corpus, vectors


def _brute_force(
    pairs, corpus, vectors, settings: dict, most_pairs: int
) -> tuple[list[list[tuple[str, float]]], list[bool]]:
    """Per pair: the expected negatives, and whether the pair is clear of near ties where the choice is made.
    `most_pairs`: the most pairs an anchor has in the input, room for positives among the nearest."""

    def cosine(u, v):
        return sum(a * b for a, b in zip(u, v, strict=True))

    def norm(text):
        return " ".join(text.lower().split())

    unique, seen = [], set()
    for text in corpus:
        if norm(text) not in seen:
            seen.add(norm(text))
            unique.append(text)
    own = defaultdict(set)
    for anchor, positive in pairs:
        own[norm(anchor)] |= {norm(anchor), norm(positive)}
    lowest = defaultdict(lambda: math.inf)  # anchor -> its lowest positive score, which the filters compare with
    for anchor, positive in pairs:
        lowest[anchor] = min(lowest[anchor], cosine(vectors[anchor], vectors[positive]))
    range_min, num = settings.get("range_min", 0), settings.get("num_negatives", 1)
    range_max = settings.get("range_max", range_min + num)
    expected, clear = [], []
    for anchor, _ in pairs:
        s_pos = lowest[anchor]
        thresholds = []
        if "margin" in settings:
            thresholds.append(s_pos - settings["margin"])
        if "relative_margin" in settings:
            thresholds.append(s_pos - abs(s_pos) * settings["relative_margin"])
        thresholds += [settings[key] for key in ("max_score", "min_score") if key in settings]
        nearest = sorted(((cosine(vectors[anchor], vectors[text]), text) for text in unique), reverse=True)
        pool = [
            (score, text) for score, text in nearest[: range_max + most_pairs] if norm(text) not in own[norm(anchor)]
        ]
        passing = [
            (text, score)
            for score, text in pool
            if ("margin" not in settings or score <= s_pos - settings["margin"])
            and ("relative_margin" not in settings or score <= s_pos - abs(s_pos) * settings["relative_margin"])
            and ("max_score" not in settings or score <= settings["max_score"])
            and ("min_score" not in settings or score >= settings["min_score"])
        ]
        expected.append(passing[range_min:range_max][:num])
        # Near ties matter where a choice is made: at the pool's edge, the window's edges and among what is chosen.
        end = range_max + most_pairs
        edges = [nearest[end - 1 : end + 1]] if end < len(nearest) else []
        scores = [score for _, score in passing[max(range_min - 1, 0) : range_min + num + 1]]
        near_tie = any(a[0] - b[0] < TOLERANCE for a, b in edges) or any(
            a - b < TOLERANCE for a, b in zip(scores, scores[1:], strict=False)
        )
        near_threshold = any(abs(score - t) < TOLERANCE for score, _ in pool for t in thresholds)
        clear.append(not (near_tie or near_threshold))
    return expected, clear


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"range_min": 3, "range_max": 12, "num_negatives": 4},
        {"margin": 0.0, "range_max": 60, "num_negatives": 3},
        {"margin": 0.002, "range_min": 2, "range_max": 80, "num_negatives": 2},
        {"relative_margin": 0.001, "max_score": 0.995, "range_min": 1, "range_max": 30, "num_negatives": 2},
        {"min_score": 0.993, "range_max": 20, "num_negatives": 5},
    ],
)
def test_mined_negatives_equal_a_brute_force_over_every_cosine(mining_data, settings):
    model, pairs, corpus, vectors = mining_data
    first = {anchor: row for row, (anchor, _) in reversed(list(enumerate(pairs)))}
    most_pairs = max(Counter(anchor for anchor, _ in pairs).values())
    pairs = sorted(dict.fromkeys(map(tuple, pairs)), key=lambda pair: first[pair[0]])  # as mined: grouped, distinct
    expected, clear = _brute_force(pairs, corpus, vectors, settings, most_pairs)
    miner = HardNegativeMiner(model, corpus, MiningSettings(**settings), batch_size=1, chunk_size=17)
    mined = list(miner.mine([a for a, _ in pairs], [p for _, p in pairs]))
    assert sum(clear) >= 0.8 * len(pairs)
    for pair, reference, is_clear, (anchor, positive) in zip(mined, expected, clear, pairs, strict=True):
        assert (pair.anchor, pair.positive) == (anchor, positive)
        assert pair.positive_score == pytest.approx(
            sum(a * b for a, b in zip(vectors[anchor], vectors[positive], strict=True)), abs=TOLERANCE
        )
        if is_clear:
            assert [text for text, _ in pair.negatives] == [text for text, _ in reference]
            assert [s for _, s in pair.negatives] == pytest.approx([s for _, s in reference], abs=TOLERANCE)
        else:  # a near tie may swap two candidates, never let in an excluded one
            own = {normalize_text(a) for a, _ in pairs if normalize_text(a) == normalize_text(anchor)}
            own |= {normalize_text(p) for a, p in pairs if normalize_text(a) == normalize_text(anchor)}
            assert not own & {normalize_text(text) for text, _ in pair.negatives}
    assert miner.counts.negatives == sum(len(pair.negatives) for pair in mined) > 0
    for name in ("margin", "relative_margin", "max_score", "min_score"):
        if name in settings:
            assert miner.counts.refused[name] > 0, f"{name} refused nothing: the case tests nothing"
