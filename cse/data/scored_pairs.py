"""Read scored sentence pairs (STS-B style dev/test data) with line-numbered errors.

Layouts, told apart by the first line:
- the STS-B release and SentEval's copy of it: tab-separated, no header, fields
  genre, file, year, id, score, sentence1, sentence2 (extra trailing fields ignored);
- a header naming the columns (`sentence1`/`sentence_A`, `sentence2`/`sentence_B`,
  `score`/`relatedness_score`/`label`), tab- or comma-separated: GLUE's STS-B, SICK, or your own file. Of several
  names for one column the first in `HEADER_ALIASES` is taken, as a training header's (`cse.data.columns`).
One pair per line: lines end at `\\n` or `\\r\\n` only (`cse.data.text_file`), a byte-order mark is dropped.
Sentences are whitespace-normalised as SentEval does (`' '.join(text.split())`). Scores must be finite numbers, and
a file whose pairs make Spearman's correlation undefined (fewer than 2, or all scores equal) is refused.
"""

import math
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

from cse.data.text_file import check_text_file, csv_fields, iter_lines
from cse.errors import InputError

STSB_LAYOUT = {"score": 4, "sentence1": 5, "sentence2": 6}  # SentEval's STSBenchmarkEval.loadFile
HEADER_ALIASES = {
    "sentence1": ("sentence1", "sentence_a", "sent1", "text1"),
    "sentence2": ("sentence2", "sentence_b", "sent2", "text2"),
    "score": ("score", "relatedness_score", "label", "similarity_score", "gold_score"),
}
FLOAT32_MAX = 3.4028234663852886e38  # scores are collated as float32: a larger one would become inf


@dataclass(frozen=True)
class ScoredPairs:
    """Parallel lists: `scores[i]` is the gold similarity of (`sentence1[i]`, `sentence2[i]`)."""

    sentence1: list[str]
    sentence2: list[str]
    scores: list[float]

    def __len__(self) -> int:
        return len(self.scores)


def read_scored_pairs(path: str | Path, what: str = "dev file") -> ScoredPairs:
    """Parse a scored-pairs file; raise `InputError` naming the file and line of the first bad row.

    Args:
        path: the file.
        what: how errors name it, e.g. "dev file" (training) or "STSBenchmark test file" (`cse eval`).
    """
    path = Path(path)
    check_text_file(path, what=what)
    where = f"{what} {path}"
    lines = enumerate(iter_lines(path), start=1)
    first_line = next(lines, (1, ""))[1]
    delimiter = "\t" if "\t" in first_line else ","
    header = [field.strip().lower() for field in _split(where, 1, first_line, delimiter)]
    columns = _columns_from_header(where, header) if _is_header(header) else STSB_LAYOUT
    if columns is STSB_LAYOUT and delimiter != "\t":
        raise InputError(
            f"{where} line 1: no header with sentence1, sentence2, score columns, and not the tab-separated "
            "STS-B layout (genre, file, year, id, score, sentence1, sentence2)"
        )
    if columns is STSB_LAYOUT:  # no header: the first line is a pair
        lines = chain([(1, first_line)], lines)
    sentence1, sentence2, scores = [], [], []
    needed = max(columns.values()) + 1
    for line_number, line in lines:
        fields = _split(where, line_number, line, delimiter)
        if not any(field.strip() for field in fields):
            continue
        if len(fields) < needed:
            raise InputError(f"{where} line {line_number}: expected at least {needed} fields, found {len(fields)}")
        raw_score = fields[columns["score"]].strip()
        try:
            score = parse_score(raw_score)
        except ValueError as problem:
            raise InputError(f"{where} line {line_number}: {problem}") from None
        sentence1.append(" ".join(fields[columns["sentence1"]].split()))
        sentence2.append(" ".join(fields[columns["sentence2"]].split()))
        scores.append(score)
    if not scores:
        raise InputError(f"{where}: no scored pairs found")
    check_correlatable(scores, where)
    return ScoredPairs(sentence1, sentence2, scores)


def parse_score(text: str) -> float:
    """A gold score written as `text`; `ValueError` saying why when it is not a finite float32 number."""
    try:
        score = float(text)
    except ValueError:
        raise ValueError(f"score '{text}' is not a number") from None
    return usable_score(score, f"'{text}'")


def usable_score(score: float, shown: str) -> float:
    """`score` if it is finite and within float32's range (scores are collated as float32), else a `ValueError`.

    Args:
        score: the number read.
        shown: the score as the message quotes it, e.g. `'nan'`.
    """
    if math.isnan(score) or (math.isinf(score) and "inf" in shown.lower()):
        raise ValueError(f"score {shown} is not finite")
    if not abs(score) <= FLOAT32_MAX:  # 1e400 reads as inf
        raise ValueError(f"score {shown} is too large (beyond float32's ±3.4e38)")
    return score


def check_correlatable(scores: list[float], where: str) -> None:
    """Raise `InputError` unless Spearman's correlation with `scores` is defined: at least 2, not all equal."""
    if len(scores) < 2:
        raise InputError(f"{where}: only {len(scores)} scored pair; Spearman's correlation needs at least 2")
    if min(scores) == max(scores):
        raise InputError(
            f"{where}: all {len(scores)} scores are {scores[0]:g}; Spearman's correlation is undefined when the gold "
            "scores do not vary"
        )


def _is_header(fields: list[str]) -> bool:
    return any(field in HEADER_ALIASES["sentence1"] for field in fields)


def _columns_from_header(where: str, header: list[str]) -> dict[str, int]:
    """Per key, the column of its first alias in the header: of `label` and `score`, `score`, as training takes."""
    columns = {}
    for key, aliases in HEADER_ALIASES.items():
        name = next((alias for alias in aliases if alias in header), None)
        if name is None:
            raise InputError(f"{where} line 1: header has no {key} column (accepted names: {', '.join(aliases)})")
        columns[key] = header.index(name)
    return columns


def _split(where: str, line_number: int, line: str, delimiter: str) -> list[str]:
    """The fields of one line. Tab-separated STS files contain unbalanced quotes: split on tabs as SentEval does,
    never parse quotes; comma-separated lines are csv, quotes parsed strictly, one pair per line."""
    if delimiter == "\t":
        return line.split("\t")
    try:
        return csv_fields(line)
    except ValueError as problem:
        raise InputError(f"{where} line {line_number}: {problem}") from None
