"""Map a source's columns onto SimCSE's names and validate each row.

Canonical columns: `sent0` (anchor), `sent1` (positive), `hard_neg` (hard negative), `score` (gold similarity of
sent0 and sent1). The training mode follows the columns, as SimCSE's `train.py`: sent0 alone is unsupervised
SimCSE, sent0+sent1 pairs use in-batch negatives, +hard_neg adds hard negatives, +score trains on scored pairs.
"""

import math
from dataclasses import dataclass

from cse.data.rows import RowError
from cse.data.scored_pairs import HEADER_ALIASES, usable_score
from cse.errors import InputError
from cse.models.batch import Mode, mode_for

TEXT_COLUMNS = ("sent0", "sent1", "hard_neg")
CANONICAL_COLUMNS = (*TEXT_COLUMNS, "score")
STS_COLUMNS = {"sent0": "sentence1", "sent1": "sentence2"}
# The dev reader's score names, in its order of preference: of several (`label`, `score`) both readers take the same.
STS_SCORE_NAMES = HEADER_ALIASES["score"]
# A third column so named holds scores, whatever the first two are called ("label" is not one: NLI labels are classes).
SCORE_NAMES = ("score", "similarity_score", "relatedness_score", "gold_score", "similarity")
# Every name the default mapping recognises: a header with none of them is read by position.
KNOWN_COLUMN_NAMES = frozenset((*CANONICAL_COLUMNS, *STS_COLUMNS.values(), *STS_SCORE_NAMES, *SCORE_NAMES))


@dataclass(frozen=True)
class ColumnMapping:
    """`sources[canonical] = key in the source row`; a key with dots (`labels.label`) reaches into nested rows."""

    sources: dict[str, str]

    @property
    def text_columns(self) -> tuple[str, ...]:
        return tuple(name for name in TEXT_COLUMNS if name in self.sources)

    @property
    def mode(self) -> Mode:
        """The training mode of the rows, the one `cse.models.batch.batch_mode` tells from their batches."""
        return mode_for(len(self.text_columns), "score" in self.sources)


def resolve_columns(header: list[str], columns: dict[str, str] | None) -> ColumnMapping:
    """The mapping from `data.columns`, or by default SimCSE's names, STS names, then column order (1-3 columns).

    Without `data.columns` the header decides the mode: `sent0`/`sent1` with `score` (or `sentence1`/`sentence2`
    with the first of `STS_SCORE_NAMES` present, or three columns of which the last is named like a score) are scored
    pairs; otherwise every inferred column is text (`load_examples` refuses a text column holding only numbers).

    Raises:
        InputError: naming the `data.columns` key that is wrong or the columns the source has.
    """
    if columns:
        mapping = ColumnMapping(dict(columns))
    elif "sent0" in header:
        if "score" in header and "hard_neg" in header:
            raise InputError(
                "data.columns: the data has both hard_neg and score columns; map the ones to train on, e.g. "
                "{sent0: sent0, sent1: sent1, score: score}"
            )
        names = ("sent0", "sent1", "score") if "score" in header else TEXT_COLUMNS
        mapping = ColumnMapping({name: name for name in names if name in header})
    elif all(name in header for name in STS_COLUMNS.values()) and any(name in header for name in STS_SCORE_NAMES):
        score = next(name for name in STS_SCORE_NAMES if name in header)
        mapping = ColumnMapping({**STS_COLUMNS, "score": score})
    elif len(header) == 3 and header[2].strip().lower() in SCORE_NAMES:
        mapping = ColumnMapping(dict(zip(("sent0", "sent1", "score"), header, strict=True)))
    elif 1 <= len(header) <= 3:
        mapping = ColumnMapping(dict(zip(TEXT_COLUMNS, header, strict=False)))
    else:
        raise InputError(
            f"data.columns: cannot tell which of the {len(header)} columns ({', '.join(header)}) to train on; "
            "map them, e.g. {sent0: premise, sent1: hypothesis}"
        )
    _check_mapping(mapping, header)
    return mapping


def unused_columns(header: list[str], mapping: ColumnMapping) -> list[str]:
    """The named columns of `header` that `mapping` reads nothing from (a nested key `labels.label` reads `labels`)."""
    used = set(mapping.sources.values()) | {key.split(".")[0] for key in mapping.sources.values()}
    return [name for name in header if name and name not in used]


def is_number(value) -> bool:
    """Whether a cell holds a number: a JSON/Arrow int or float, or a string `float()` reads (`"4.5"`, `"1e3"`)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if not isinstance(value, str) or not value.strip():
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def extract_row(row: dict, mapping: ColumnMapping, score_range: tuple[float, float] | None, location: str) -> dict:
    """The canonical fields of one row: texts stripped and non-empty, the score a finite number.

    With `score_range = (low, high)` the score must lie in it and is mapped linearly onto [0, 1].

    Raises:
        RowError: naming the column and what is wrong.
    """
    example = {}
    for name, key in mapping.sources.items():
        value = _lookup(row, key, location)
        if name == "score":
            example[name] = _score(value, key, score_range, location)
        elif not isinstance(value, str) or not value.strip():
            raise RowError(
                location,
                f"column '{key}' is empty"
                if value in (None, "") or isinstance(value, str)
                else f"column '{key}' is not text",
            )
        else:
            example[name] = value.strip()
    return example


def _check_mapping(mapping: ColumnMapping, header: list[str]) -> None:
    unknown = [name for name in mapping.sources if name not in CANONICAL_COLUMNS]
    if unknown:
        raise InputError(f"data.columns: unknown key '{unknown[0]}'; keys are {', '.join(CANONICAL_COLUMNS)}")
    names = set(mapping.sources)
    if "sent0" not in names:
        raise InputError("data.columns: sent0 (the anchor text) is required")
    if ("hard_neg" in names or "score" in names) and "sent1" not in names:
        raise InputError("data.columns: hard_neg and score need sent1")
    if "hard_neg" in names and "score" in names:
        raise InputError("data.columns: use either hard_neg (triplets) or score (scored pairs), not both")
    for name, key in mapping.sources.items():
        if header and key not in header and key.split(".")[0] not in header:
            raise InputError(f"data.columns.{name}: no column '{key}' in the data (columns: {', '.join(header)})")


def _lookup(row: dict, key: str, location: str):
    if key in row:
        return row[key]
    value = row
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise RowError(location, f"no column '{key}'")
        value = value[part]
    return value


def _score(value, key: str, score_range: tuple[float, float] | None, location: str) -> float:
    if isinstance(value, bool) or not (isinstance(value, int | float) or is_number(value)):
        raise RowError(location, f"column '{key}': score {value!r} is not a number")
    try:
        score = usable_score(_float(value), _shown(value))
    except ValueError as problem:
        raise RowError(location, f"column '{key}': {problem}") from None
    if score_range is None:
        return score
    low, high = score_range
    if not low <= score <= high:
        raise RowError(location, f"column '{key}': score {score} is outside data.score_range [{low}, {high}]")
    return (score - low) / (high - low)


def _float(value: int | float | str) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer beyond float's range (JSON allows any number of digits)
        return math.inf


def _shown(value) -> str:
    """`value` for a message: as written (quoted if a string), a number of hundreds of digits shortened."""
    text = str(value)
    if len(text) > 40:
        text = f"{text[:20]}...{text[-8:]} ({len(text)} characters)"
    return repr(text) if isinstance(value, str) else text
