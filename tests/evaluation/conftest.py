"""A small SentEval `downstream` directory written by the tests, with the raw rows kept for independent checks."""

import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cse.evaluation.sts_tasks import STS_YEARS

WORDS = ["the", "man", "woman", "girl", "boy", "dog", "is", "are", "in", "on", "park", "playing", "guitar", "a"]


@dataclass
class SentEvalFiles:
    """What was written: per STS task and subset the rows (sentence1, sentence2, gold or None when unscored)."""

    root: Path
    sts: dict[str, dict[str, list[tuple[str, str, float | None]]]] = field(default_factory=dict)
    transfer: dict[str, dict[str, list]] = field(default_factory=dict)


def sentence(rng: random.Random, low: int = 2, high: int = 9, words: list[str] = WORDS) -> str:
    return " ".join(rng.choice(words) for _ in range(rng.randint(low, high)))


def write_senteval_dir(root: Path, seed: int = 0, pairs_per_subset: int = 6) -> SentEvalFiles:
    """Every STS task (all subsets, STS-B and SICK dev and test) and every transfer task, a few rows each."""
    rng = random.Random(seed)
    files = SentEvalFiles(root)
    for year, subsets in STS_YEARS.items():
        directory = root / "STS" / f"{year}-en-test"
        directory.mkdir(parents=True)
        files.sts[year] = {}
        for index, subset in enumerate(subsets):
            rows = [(sentence(rng), sentence(rng), round(rng.uniform(0, 5), 2)) for _ in range(pairs_per_subset)]
            if year in ("STS15", "STS16") and index == 0:
                rows.insert(2, (sentence(rng), sentence(rng), None))  # an unscored pair: empty gold line
            files.sts[year][subset] = rows
            # Extra spaces inside sentences are normalised away, as SentEval's split/join does.
            (directory / f"STS.input.{subset}.txt").write_text(
                "".join(f"{a.replace(' ', '  ', 1)}\t{b} \n" for a, b, _ in rows), encoding="utf-8"
            )
            (directory / f"STS.gs.{subset}.txt").write_text(
                "".join(f"{'' if gold is None else gold}\n" for _, _, gold in rows), encoding="utf-8"
            )
    (root / "STS" / "STSBenchmark").mkdir()
    (root / "SICK").mkdir()
    for split in ("dev", "test"):
        rows = [(sentence(rng), sentence(rng), round(rng.uniform(0, 5), 3)) for _ in range(12)]
        files.sts.setdefault("STSBenchmark", {})[split] = rows
        (root / "STS" / "STSBenchmark" / f"sts-{split}.csv").write_text(
            "".join(f"main-captions\tMSRvid\t2012test\t{i:04d}\t{g}\t{a}\t{b}\n" for i, (a, b, g) in enumerate(rows)),
            encoding="utf-8",
        )
        rows = [(sentence(rng), sentence(rng), round(rng.uniform(1, 5), 1)) for _ in range(12)]
        files.sts.setdefault("SICKRelatedness", {})[split] = rows
        name = "SICK_trial.txt" if split == "dev" else "SICK_test_annotated.txt"
        (root / "SICK" / name).write_text(
            "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n"
            + "".join(f"{i}\t{a}\t{b}\t{g}\tNEUTRAL\n" for i, (a, b, g) in enumerate(rows)),
            encoding="utf-8",
        )
    _write_transfer(root, rng, files)
    return files


def _write_transfer(root: Path, rng: random.Random, files: SentEvalFiles) -> None:
    binary = {
        "MR": ("rt-polarity.pos", "rt-polarity.neg"),
        "CR": ("custrev.pos", "custrev.neg"),
        "SUBJ": ("subj.objective", "subj.subjective"),
        "MPQA": ("mpqa.pos", "mpqa.neg"),
    }
    for task, names in binary.items():
        (root / task).mkdir()
        positives = [f"the dog is {sentence(rng, 1, 3)}" for _ in range(30)]
        negatives = [f"a girl are {sentence(rng, 1, 3)}" for _ in range(30)]
        files.transfer[task] = {"positive": positives, "negative": negatives}
        for name, lines in zip(names, (positives, negatives), strict=True):
            (root / task / name).write_text("".join(f"{line}\n" for line in lines), encoding="latin-1")
    (root / "SST" / "binary").mkdir(parents=True)
    for split, size in (("train", 40), ("dev", 20), ("test", 20)):
        rows = [
            (f"the dog is {sentence(rng, 1, 3)}", 1) if i % 2 else (f"a girl {sentence(rng, 1, 3)}", 0)
            for i in range(size)
        ]
        files.transfer.setdefault("SST2", {})[split] = rows
        (root / "SST" / "binary" / f"sentiment-{split}").write_text(
            "".join(f"{text}\t{label}\n" for text, label in rows), encoding="utf-8"
        )
    (root / "TREC").mkdir()
    classes = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
    for name, size in (("train_5500.label", 60), ("TREC_10.label", 24)):
        # The first word tells the class; the rest is drawn from other words.
        rows = [(classes[i % 6], f"{WORDS[i % 6]} {sentence(rng, 1, 3, WORDS[6:])} ?") for i in range(size)]
        files.transfer.setdefault("TREC", {})[name] = rows
        (root / "TREC" / name).write_text("".join(f"{label}:fine {text}\n" for label, text in rows), encoding="latin-1")
    (root / "MRPC").mkdir()
    for name, size in (("msr_paraphrase_train.txt", 50), ("msr_paraphrase_test.txt", 20)):
        rows = []
        for i in range(size):
            first = sentence(rng)
            rows.append((i % 2, first, first if i % 2 else sentence(rng)))
        files.transfer.setdefault("MRPC", {})[name] = rows
        (root / "MRPC" / name).write_text(
            "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
            + "".join(f"{label}\t{i}\t{i + 1000}\t{a}\t{b}\n" for i, (label, a, b) in enumerate(rows)),
            encoding="utf-8",
        )


@pytest.fixture(scope="session")
def senteval_files(tmp_path_factory: pytest.TempPathFactory) -> SentEvalFiles:
    """The whole layout, written once (tests must not modify it; copy it first)."""
    return write_senteval_dir(tmp_path_factory.mktemp("senteval") / "downstream")
