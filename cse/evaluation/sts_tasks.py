"""Read the STS tasks of SimCSE's evaluation from SentEval's data layout, exactly as SentEval parses them.

- STS12–STS16 (`STS/STS1x-en-test/`): per subset, `STS.input.<subset>.txt` holds tab-separated sentence pairs and
  `STS.gs.<subset>.txt` one gold score per line; a pair whose gold line is empty has no score and is left out
  (STS15/16 have such lines). The subsets are SentEval's (`senteval/sts.py`); STS13 has no SMT subset, which
  SentEval leaves out for licence reasons.
- STS Benchmark (`STS/STSBenchmark/sts-{dev,test}.csv`) and SICK-R (`SICK/SICK_{trial,test_annotated}.txt`): read
  by `cse.data.scored_pairs.read_scored_pairs`, the reader that validation during training uses.
Sentences are whitespace-normalised as SentEval's `s.split()` followed by the batcher's `' '.join(s)`.
"""

from pathlib import Path

from cse.data.scored_pairs import ScoredPairs, check_correlatable, parse_score, read_scored_pairs
from cse.errors import InputError
from cse.evaluation.data_dir import read_lines, task_file

# SentEval's STS12Eval ... STS16Eval: the subsets of each year, in SentEval's order.
STS_YEARS: dict[str, tuple[str, ...]] = {
    "STS12": ("MSRpar", "MSRvid", "SMTeuroparl", "surprise.OnWN", "surprise.SMTnews"),
    "STS13": ("FNWN", "headlines", "OnWN"),
    "STS14": ("deft-forum", "deft-news", "headlines", "images", "OnWN", "tweet-news"),
    "STS15": ("answers-forums", "answers-students", "belief", "headlines", "images"),
    "STS16": ("answer-answer", "headlines", "plagiarism", "postediting", "question-question"),
}
# The split each mode reads (SimCSE's evaluation.py: `--mode dev` reports dev, `--mode test` test).
SPLIT_FILES: dict[str, dict[str, str]] = {
    "STSBenchmark": {"dev": "STS/STSBenchmark/sts-dev.csv", "test": "STS/STSBenchmark/sts-test.csv"},
    "SICKRelatedness": {"dev": "SICK/SICK_trial.txt", "test": "SICK/SICK_test_annotated.txt"},
}
STS_TASKS: tuple[str, ...] = (*STS_YEARS, *SPLIT_FILES)


def read_sts_task(data_dir: Path, task: str, mode: str) -> dict[str, ScoredPairs]:
    """The scored pairs of one task, by subset: STS12–16 give their subsets, STS-B and SICK-R the split of `mode`.

    Args:
        data_dir: SentEval's `downstream` directory.
        task: one of `STS_TASKS`.
        mode: `test` or `dev`; STS12–16 have test data only.
    """
    if task in SPLIT_FILES:
        path = task_file(data_dir, SPLIT_FILES[task][mode], task)
        return {mode: read_scored_pairs(path, what=f"{task} {mode} file")}
    if mode != "test":
        raise InputError(f"{task} has test data only; --mode {mode} evaluates {' and '.join(SPLIT_FILES)}")
    year_dir = f"STS/{task}-en-test"
    return {
        subset: read_sts_subset(
            task_file(data_dir, f"{year_dir}/STS.input.{subset}.txt", task),
            task_file(data_dir, f"{year_dir}/STS.gs.{subset}.txt", task),
        )
        for subset in STS_YEARS[task]
    }


def read_sts_subset(input_path: Path, gold_path: Path) -> ScoredPairs:
    """One STS12–16 subset: line i of `input_path` is a tab-separated pair, line i of `gold_path` its score or empty.

    Raises:
        InputError: naming the file (and line) when the files differ in length, a pair is not two tab-separated
            sentences, a score is not a finite number, or the scores make Spearman's correlation undefined.
    """
    task = input_path.parent.name
    pairs = read_lines(input_path, "utf-8", task)
    golds = read_lines(gold_path, "utf-8", task)
    if len(pairs) != len(golds):
        raise InputError(
            f"{input_path}: {len(pairs)} lines, but its gold scores {gold_path.name} has {len(golds)}; "
            "they must match line by line"
        )
    sentence1, sentence2, scores = [], [], []
    for line_number, (pair, gold) in enumerate(zip(pairs, golds, strict=True), start=1):
        if gold == "":  # SentEval's `raw_scores != ''`: an unscored pair
            continue
        try:
            score = parse_score(gold)
        except ValueError as problem:
            raise InputError(f"{gold_path} line {line_number}: gold {problem}") from None
        fields = pair.split("\t")
        if len(fields) != 2:
            raise InputError(
                f"{input_path} line {line_number}: expected 2 tab-separated sentences, found {len(fields)} fields"
            )
        sentence1.append(" ".join(fields[0].split()))
        sentence2.append(" ".join(fields[1].split()))
        scores.append(score)
    if not scores:
        raise InputError(f"{gold_path}: no scored pairs (every gold line is empty)")
    check_correlatable(scores, str(gold_path))
    return ScoredPairs(sentence1, sentence2, scores)
