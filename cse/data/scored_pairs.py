"""Read scored sentence pairs (STS-B style dev/test data) with line-numbered errors.

Layouts, told apart by the first line:
- the STS-B release and SentEval's copy of it: tab-separated, no header, fields
  genre, file, year, id, score, sentence1, sentence2 (extra trailing fields ignored);
- a header naming the columns (`sentence1`/`sentence_A`, `sentence2`/`sentence_B`,
  `score`/`relatedness_score`/`label`), tab- or comma-separated: GLUE's STS-B, SICK, or your own file.
Sentences are whitespace-normalised as SentEval does (`' '.join(text.split())`).
"""

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cse.data.text_file import check_text_file
from cse.errors import InputError

STSB_LAYOUT = {"score": 4, "sentence1": 5, "sentence2": 6}  # SentEval's STSBenchmarkEval.loadFile
HEADER_ALIASES = {
    "sentence1": ("sentence1", "sentence_a", "sent1", "text1"),
    "sentence2": ("sentence2", "sentence_b", "sent2", "text2"),
    "score": ("score", "relatedness_score", "label", "similarity_score", "gold_score"),
}


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
    with path.open(encoding="utf-8", newline="") as handle:
        first_line = handle.readline()
    delimiter = "\t" if "\t" in first_line else ","
    header = [field.strip().lower() for field in _split(first_line.rstrip("\r\n"), delimiter)]
    columns = _columns_from_header(path, header) if _is_header(header) else STSB_LAYOUT
    if columns is STSB_LAYOUT and delimiter != "\t":
        raise InputError(
            f"{path} line 1: no header with sentence1, sentence2, score columns, and not the tab-separated "
            "STS-B layout (genre, file, year, id, score, sentence1, sentence2)"
        )
    sentence1, sentence2, scores = [], [], []
    for line_number, fields in _rows(path, delimiter, skip_header=columns is not STSB_LAYOUT):
        needed = max(columns.values()) + 1
        if len(fields) < needed:
            raise InputError(f"{path} line {line_number}: expected at least {needed} fields, found {len(fields)}")
        raw_score = fields[columns["score"]].strip()
        try:
            score = float(raw_score)
        except ValueError:
            raise InputError(f"{path} line {line_number}: score '{raw_score}' is not a number") from None
        sentence1.append(" ".join(fields[columns["sentence1"]].split()))
        sentence2.append(" ".join(fields[columns["sentence2"]].split()))
        scores.append(score)
    if not scores:
        raise InputError(f"{path}: no scored pairs found")
    return ScoredPairs(sentence1, sentence2, scores)


def _is_header(fields: list[str]) -> bool:
    return any(field in HEADER_ALIASES["sentence1"] for field in fields)


def _columns_from_header(path: Path, header: list[str]) -> dict[str, int]:
    columns = {}
    for key, aliases in HEADER_ALIASES.items():
        matches = [index for index, field in enumerate(header) if field in aliases]
        if not matches:
            raise InputError(f"{path} line 1: header has no {key} column (accepted names: {', '.join(aliases)})")
        columns[key] = matches[0]
    return columns


def _split(line: str, delimiter: str) -> list[str]:
    # Tab-separated STS files contain unbalanced quotes: split on tabs as SentEval does, never parse quotes.
    return line.split("\t") if delimiter == "\t" else next(csv.reader([line]))


def _rows(path: Path, delimiter: str, skip_header: bool) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) for every non-blank data line."""
    with path.open(encoding="utf-8", newline="") as handle:
        if delimiter == "\t":
            numbered = ((number, line.rstrip("\r\n").split("\t")) for number, line in enumerate(handle, start=1))
        else:
            reader = csv.reader(handle)
            numbered = ((reader.line_num, fields) for fields in reader)
        for line_number, fields in numbered:
            if skip_header and line_number == 1:
                continue
            if any(field.strip() for field in fields):
                yield line_number, fields
