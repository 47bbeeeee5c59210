"""`HardNegativeMiner` against sentence-transformers' own `mine_hard_negatives` (output_format="triplet",
use_faiss=False), both embedding with all-MiniLM-L6-v2 (the same vectors: test_same_embeddings): the same options
must give the same triplets. Where cse differs on purpose (README, "Hard negatives from your model"), the data keeps
clear of it: no anchor is a corpus sentence, no two texts differ only in case or spacing; the last two tests show
those two differences as the README states them."""

import csv
import re
from collections import Counter, defaultdict

import pytest
import torch
from datasets import Dataset
from sentence_transformers import SentenceTransformer
from sentence_transformers.util import mine_hard_negatives

from cse import load_model
from cse.inference.hard_negatives import HardNegativeMiner, MiningSettings

PAIRS = [
    ("How do I bake sourdough bread?", "Sourdough needs a starter, flour, water and a long rise."),
    ("How do I bake sourdough bread?", "Knead the dough, let it proof overnight, then bake it hot."),  # second positive
    ("What is the capital of France?", "Paris is the capital and largest city of France."),
    ("Who wrote Hamlet?", "Hamlet is a tragedy written by William Shakespeare."),
    ("How fast can a cheetah run?", "Cheetahs reach speeds of about 110 kilometres per hour."),
    ("Why is the sky blue?", "Sunlight scatters off air molecules, and blue light scatters most."),
    ("How do vaccines work?", "Vaccines train the immune system to recognise a pathogen."),
    ("What causes earthquakes?", "Earthquakes happen when tectonic plates slip along faults."),
    ("How do I learn Python?", "Start with the official tutorial and write small programs every day."),
    ("What is photosynthesis?", "Plants turn light, water and carbon dioxide into sugar and oxygen."),
    ("Where do penguins live?", "Most penguins live in the Southern Hemisphere, many in Antarctica."),
    ("How tall is Mount Everest?", "Mount Everest is about 8,849 metres high."),
    ("What is the capital of France?", "The French government sits in Paris."),  # a second positive, apart
]
CORPUS = [
    "Rye bread is denser than wheat bread.",
    "A starter is a culture of wild yeast and bacteria.",
    "Lyon is a large city in France known for its food.",
    "Paris is a city in France.",  # between the scores of its anchor's two positives
    "Marseille is the second city of France.",
    "Berlin is the capital of Germany.",
    "Macbeth is another play by Shakespeare.",
    "Leopards are strong climbers and hunt at night.",
    "Sunsets look red because light travels through more air.",
    "Antibiotics kill bacteria but not viruses.",
    "Volcanoes erupt where magma reaches the surface.",
    "JavaScript runs in every web browser.",
    "Chlorophyll makes leaves look green.",
    "Polar bears live in the Arctic.",
    "K2 is the second highest mountain on Earth.",
    "The stock market closed higher on Friday.",
    "Cats sleep for most of the day.",
]
CASES = [
    dict(num_negatives=1),
    dict(num_negatives=3, range_max=8),
    dict(num_negatives=2, range_min=2, range_max=9),
    dict(num_negatives=3, margin=0.0),
    dict(num_negatives=2, margin=0.1, range_max=12),
    dict(num_negatives=3, relative_margin=0.05),
    dict(num_negatives=4, max_score=0.3, range_max=20),
    dict(num_negatives=5, min_score=0.2, range_max=12),
    dict(num_negatives=1, margin=0.0, range_max=5),
    dict(num_negatives=2, relative_margin=0.3, range_min=1, range_max=10),  # range_min: after the filters
    dict(num_negatives=2, max_score=0.35, range_min=2, range_max=15),
    dict(num_negatives=3, margin=0.05, max_score=0.4, min_score=0.05, range_min=1, range_max=25),
    dict(num_negatives=1, min_score=0.1),
    dict(num_negatives=1, max_score=0.038),  # only the default range_max's + 2 reaches one (0.0371, Python's)
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def models(minilm_dir):
    return SentenceTransformer(str(minilm_dir), device="cpu"), load_model(minilm_dir, device="cpu")


def _reference(model, pairs, corpus, verbose=False, **settings) -> dict[tuple[str, str], set[str]]:
    """sentence-transformers' triplets: (anchor, positive) -> its negatives."""
    dataset = Dataset.from_dict({"anchor": [a for a, _ in pairs], "positive": [p for _, p in pairs]})
    options = {("absolute_margin" if key == "margin" else key): value for key, value in settings.items()}
    mined = mine_hard_negatives(
        dataset, model, corpus=corpus, output_format="triplet", use_faiss=False, verbose=verbose, **options
    )
    triplets = defaultdict(set)
    for row in mined:
        triplets[row["anchor"], row["positive"]].add(row["negative"])
    return dict(triplets)


def _cse(model, pairs, corpus, **settings) -> dict[tuple[str, str], set[str]]:
    """cse's triplets from the miner, corpus sentences and positives as candidates."""
    miner = HardNegativeMiner(model, corpus + [p for _, p in pairs], MiningSettings(**settings), chunk_size=4)
    triplets = defaultdict(set)
    for pair in miner.mine([a for a, _ in pairs], [p for _, p in pairs]):
        triplets[pair.anchor, pair.positive].update(text for text, _ in pair.negatives)
    return {key: negatives for key, negatives in triplets.items() if negatives}


def test_same_embeddings(models):
    reference, model = models
    texts = [text for pair in PAIRS for text in pair] + CORPUS
    assert torch.allclose(
        reference.encode(texts, normalize_embeddings=True, convert_to_tensor=True),
        model.encode(texts, 64, normalize=True, convert_to="torch"),
        atol=1e-5,
    )


@pytest.mark.parametrize("settings", CASES)
def test_the_triplets_are_sentence_transformers(models, settings):
    reference, model = models
    expected = _reference(reference, PAIRS, CORPUS, **settings)
    assert expected  # a case that mines something
    assert _cse(model, PAIRS, CORPUS, **settings) == expected


def _printed_range_max(capsys) -> int:
    return int(re.search(r"Setting range_max to (\d+)", capsys.readouterr().out)[1])


@pytest.mark.parametrize(
    "settings",
    [
        dict(num_negatives=1),
        dict(num_negatives=2, range_min=3, margin=0.0),
        dict(num_negatives=3, relative_margin=0.05, max_score=0.9),
        dict(num_negatives=1, max_score=0.5),
        dict(num_negatives=2, min_score=0.1),  # no wider window for min_score
        dict(num_negatives=2, sampling_strategy="random"),  # nor for random sampling
    ],
)
def test_the_default_range_max_is_sentence_transformers(models, settings, capsys):
    _reference(models[0], PAIRS, CORPUS, verbose=True, **settings)
    most_pairs = max(Counter(anchor for anchor, _ in PAIRS).values())
    assert MiningSettings(**settings).window_end(most_pairs) == _printed_range_max(capsys)


@pytest.mark.parametrize(
    "settings",
    [
        dict(num_negatives=2, sampling_strategy="random"),
        dict(num_negatives=2, sampling_strategy="random", margin=0.4, range_min=1),
    ],
)
def test_random_draws_come_from_sentence_transformers_window(models, settings, capsys):
    reference, model = models
    drawn = _reference(reference, PAIRS, CORPUS, verbose=True, **settings)
    window = _printed_range_max(capsys)
    every = {**settings, "sampling_strategy": "top", "range_max": window}
    candidates = _reference(reference, PAIRS, CORPUS, **{**every, "num_negatives": window - every.get("range_min", 0)})
    assert any(len(negatives) > 2 for negatives in candidates.values())  # a choice to make
    for seed in range(4):
        mined = _cse(model, PAIRS, CORPUS, seed=seed, **settings)
        assert mined.keys() == drawn.keys()
        for key, negatives in mined.items():
            assert negatives <= candidates[key] and len(negatives) == len(drawn[key]) == min(2, len(candidates[key]))


def test_cse_mine_with_a_corpus_mines_from_it_and_the_positives(models, minilm_dir, run_cse, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open("pairs.csv", "w", newline="") as file:
        csv.writer(file).writerows([("sent0", "sent1"), *PAIRS])
    with open("corpus.txt", "w") as file:
        file.write("\n".join(CORPUS) + "\n")
    settings = dict(num_negatives=3, range_max=8)
    code, _, err = run_cse(
        ["mine", str(minilm_dir), "pairs.csv", "out.csv", "--corpus", "corpus.txt"]
        + [f"--{key.replace('_', '-')}={value}" for key, value in settings.items()]
    )
    assert code == 0, err
    mined = defaultdict(set)
    for row in csv.DictReader(open("out.csv", newline="")):
        mined[row["sent0"], row["sent1"]].add(row["hard_neg"])
    expected = _reference(models[0], PAIRS, CORPUS, **settings)
    assert {positive for _, positive in PAIRS} & set().union(*expected.values())  # another pair's positive is one
    assert dict(mined) == expected


def test_the_anchor_is_never_its_own_negative_where_sentence_transformers_takes_it(models):
    reference, model = models
    anchor = "Paris is the capital and largest city of France."  # a positive above: a corpus sentence
    pairs = PAIRS + [(anchor, "Paris is a city in France.")]
    theirs = _reference(reference, pairs, CORPUS, num_negatives=2)[anchor, pairs[-1][1]]
    ours = _cse(model, pairs, CORPUS, num_negatives=1)[anchor, pairs[-1][1]]
    assert anchor in theirs and ours == theirs - {anchor}  # the anchor at cosine 1, then the nearest other


def test_a_case_variant_is_one_sentence_where_sentence_transformers_sees_two(models):
    reference, model = models
    variant = "PARIS is a city in  France."
    corpus = CORPUS + [variant]
    key = PAIRS[2]  # What is the capital of France?, Paris is the capital ...
    theirs = _reference(reference, PAIRS, corpus, num_negatives=2, range_max=4)[key]
    ours = _cse(model, PAIRS, corpus, num_negatives=1, range_max=4)[key]
    assert {"Paris is a city in France.", variant} == theirs and ours == {"Paris is a city in France."}
