"""Training examples from any source, in SimCSE's column names, tokenized once and cached on disk."""

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from datasets import Dataset
from datasets.fingerprint import Hasher
from lightning.pytorch.utilities import rank_zero_info
from transformers import PreTrainedTokenizerBase

from cse.data.columns import (
    KNOWN_COLUMN_NAMES,
    TEXT_COLUMNS,
    ColumnMapping,
    extract_row,
    is_number,
    resolve_columns,
    unused_columns,
)
from cse.data.corpus import SPLIT_RULE, load_sentences
from cse.data.derived_cache import derived_data_cache, source_identity
from cse.data.rows import RowError, read_rows
from cse.data.table_cache import cached_table
from cse.errors import InputError
from cse.models.word_deletion import NO_WORD

BadRows = Literal["error", "skip"]
# Rows per record batch of the tokenized cache: fewer headers than datasets' 1,000 to map on opening (cse.data.corpus).
TOKENIZED_RECORD_BATCH_ROWS = 10_000
ROWS_CACHE_VERSION = "rows-v1"  # in the cached table's name: a change of its columns or notes reads sources again


@dataclass(frozen=True)
class TrainingExamples:
    """Rows with canonical columns (`sent0`, maybe `sent1`, `hard_neg`, `score`), how they were found, and what the
    reader of the rows should be told (bad rows skipped, scores that do not vary): see `announce_warnings`;
    `unused_columns`: the source's columns that a mapping inferred from the header leaves out."""

    dataset: Dataset
    mapping: ColumnMapping
    fingerprint: str
    warnings: tuple[str, ...] = ()
    unused_columns: tuple[str, ...] = ()


def load_examples(
    source: str,
    columns: dict[str, str] | None = None,
    score_range: tuple[float, float] | None = None,
    on_bad_rows: BadRows = "error",
    cache_dir: str | None = None,
) -> TrainingExamples:
    """Read and validate every row of `source` (see `cse.data.rows` for the formats), once: the rows are cached.

    The valid rows are written in chunks to a memory-mapped Arrow file (`cse.data.table_cache`) named by the
    fingerprint (source path, size and mtime, mapping, score_range, on_bad_rows), so memory does not grow with the
    source, and the next call with the same inputs (`setup` after `prepare_data`, another DDP process, the next
    run) opens that file instead of parsing again; its warnings are returned again. The mapping is resolved from the
    header on every call.

    Args:
        source: a local file (`.txt`, `.csv`, `.tsv`, `.jsonl`, `.json`, `.parquet`), a `save_to_disk`
            directory or a hub dataset name.
        columns: canonical name -> source column (nested keys with dots); None for the defaults of `resolve_columns`.
        score_range: (low, high) of the gold scores, mapped onto [0, 1]; None keeps scores as they are.
        on_bad_rows: "error" stops at the first bad row, naming file, line and column; "skip" drops bad rows, and
            the result's `warnings` count them.
        cache_dir: where the Arrow file goes (under `derived_data_cache`); None for `datasets`' default cache.
    """
    if Path(source).suffix == ".txt":
        if columns and set(columns) != {"sent0"}:
            raise InputError(f"data.columns: {source} is a one-sentence-per-line corpus; only sent0 applies")
        dataset = load_sentences(source, cache_dir).rename_column("text", "sent0")
        fingerprint = Hasher.hash((source_identity(source), SPLIT_RULE))  # the key of load_sentences' cache
        return TrainingExamples(dataset, ColumnMapping({"sent0": "text"}), fingerprint)
    header, rows, hub_files = read_rows(source, cache_dir)
    mapping = resolve_columns(header, columns)
    fingerprint = Hasher.hash((source_identity(source, hub_files), mapping.sources, score_range, on_bad_rows))
    tally = RowTally()
    dataset, notes = cached_table(
        derived_data_cache(cache_dir) / f"{fingerprint}.{ROWS_CACHE_VERSION}.arrow",
        {name: "float64" if name == "score" else "string" for name in mapping.sources},
        _valid_examples(source, rows, mapping, score_range, on_bad_rows, not columns, tally),
        lambda: asdict(tally),
    )
    warnings = _warnings(source, RowTally(**notes))  # again on every run: a cached file keeps its first reading's
    if not columns and Path(source).suffix in (".csv", ".tsv"):
        warnings += _text_like_header(source, header)
    unused = () if columns else tuple(unused_columns(header, mapping))
    return TrainingExamples(dataset, mapping, fingerprint, warnings, unused)


def announce_warnings(examples: TrainingExamples) -> None:
    """Each of `examples.warnings` as one line `warning: ...` (on rank 0), as the rest of cse warns."""
    for warning in examples.warnings:
        rank_zero_info(f"warning: {warning}")


def warn_unused_columns(source: str, examples: TrainingExamples) -> None:
    """Warn in one line when the header left columns out of training (`sent0,sent1,Score` trains pairs)."""
    if examples.unused_columns:
        unused = ", ".join(f"'{name}'" for name in examples.unused_columns)
        read = ", ".join(f"{name}: '{key}'" for name, key in examples.mapping.sources.items())
        rank_zero_info(
            f"warning: training data {source}: column(s) {unused} not used; read as {examples.mapping.mode} from "
            f"{{{read}}} (set data.columns to train on others)"
        )


@dataclass
class RowTally:
    """What reading the rows learned: rows kept, rows skipped (and the first one's problem), the range of scores."""

    rows: int = 0
    skipped: int = 0
    first_problem: str = ""
    score_min: float | None = None
    score_max: float | None = None


def _valid_examples(
    source: str,
    rows: Iterator[tuple[str, dict | RowError]],
    mapping: ColumnMapping,
    score_range: tuple[float, float] | None,
    on_bad_rows: BadRows,
    inferred_mapping: bool,
    tally: RowTally,
) -> Iterator[dict]:
    """The canonical fields of each good row, counted in `tally`; `InputError` at the first bad row or at the end.

    Inferred text columns are checked for numbers over the whole file first, so that a score column taken as text
    is named as such rather than reported as the first row whose "text" is a number.
    """
    inferred = {name: mapping.sources[name] for name in mapping.text_columns} if inferred_mapping else {}
    kinds: dict[str, set[bool]] = {name: set() for name in inferred}  # per column: is_number of its non-empty cells
    for location, row in rows:
        if inferred and isinstance(row, dict):
            for name, key in inferred.items():
                value = row.get(key)
                if value is not None and not (isinstance(value, str) and not value.strip()):
                    kinds[name].add(is_number(value))
        try:
            if isinstance(row, RowError):
                raise row
            example = extract_row(row, mapping, score_range, location)
        except RowError as problem:
            if on_bad_rows == "error" and not inferred:
                raise InputError(f"training data {source} {problem}") from None
            tally.skipped, tally.first_problem = tally.skipped + 1, tally.first_problem or str(problem)
            continue
        tally.rows += 1
        if "score" in example:
            score = example["score"]
            tally.score_min = score if tally.score_min is None else min(tally.score_min, score)
            tally.score_max = score if tally.score_max is None else max(tally.score_max, score)
        yield example
    for name, kind in kinds.items():
        if kind == {True}:
            raise InputError(_numeric_column_message(source, mapping, name))
    if tally.skipped and on_bad_rows == "error":
        raise InputError(f"training data {source} {tally.first_problem}")
    if not tally.rows:
        skipped = f" (skipped {tally.skipped} bad rows, first: {tally.first_problem})" if tally.skipped else ""
        raise InputError(f"training data {source}: no usable rows{skipped}")


def _warnings(source: str, tally: RowTally) -> tuple[str, ...]:
    """The warnings about rows read well enough to train on: bad rows skipped, scores that do not vary."""
    warnings = []
    if tally.skipped:
        warnings.append(f"skipped {tally.skipped} bad rows of {source} (first: {tally.first_problem})")
    if tally.rows and tally.score_min is not None and tally.score_min == tally.score_max:
        warnings.append(
            f"all {tally.rows} scores of {source} are {tally.score_min:g}: CoSENT (the default "
            "model.scored_loss) learns nothing from pairs whose scores do not vary; cosine_mse regresses onto them"
        )
    return tuple(warnings)


def _text_like_header(source: str, header: list[str]) -> tuple[str, ...]:
    """A warning when a header read by position has names that look like sentences (words with spaces): a file
    without a header line, whose first row would be taken for one and not trained on."""
    if set(header) & KNOWN_COLUMN_NAMES or not any(len(name.split()) > 1 for name in header):
        return ()
    names = ", ".join(f"'{name}'" for name in header)
    return (
        f"{source}: line 1 ({names}) is read as the header, not trained on; if the file has none, add one "
        f"({','.join(TEXT_COLUMNS[: len(header)])})",
    )


def tokenize_examples(
    examples: TrainingExamples,
    tokenizer: PreTrainedTokenizerBase,
    max_seq_length: int,
    cache_dir: str | None = None,
    word_ids: bool = False,
) -> Dataset:
    """Per row, the token ids of each text column as a list of k sequences (k = 1, 2 or 3), truncated, unpadded.

    With `word_ids`, also each token's word index (`NO_WORD` for special tokens), for TSDAE's word deletion; this
    needs a fast tokenizer (`SimCSEDataModule` checks it at start).

    The result is cached under a name made of the source, column mapping, tokenizer vocabulary and length, so the
    next run with the same inputs loads it instead of tokenizing again.
    """
    text_columns = [name for name in TEXT_COLUMNS if name in examples.dataset.column_names]
    fingerprint = Hasher.hash(
        (examples.fingerprint, type(tokenizer).__name__, tokenizer.get_vocab(), max_seq_length, "tokenize")
        + (("word_ids",) if word_ids else ())
    )
    cache_root = derived_data_cache(cache_dir)
    cache_root.mkdir(parents=True, exist_ok=True)

    def tokenize(batch: dict[str, list]) -> dict[str, list]:
        encoded = [tokenizer(batch[name], truncation=True, max_length=max_seq_length) for name in text_columns]
        columns = {
            key: [list(views) for views in zip(*(enc[key] for enc in encoded), strict=True)] for key in encoded[0]
        }
        if word_ids:
            columns["word_ids"] = [
                [[NO_WORD if word is None else word for word in enc.word_ids(row)] for enc in encoded]
                for row in range(len(encoded[0]["input_ids"]))
            ]
        return columns

    return examples.dataset.map(
        tokenize,
        batched=True,
        remove_columns=text_columns,
        cache_file_name=str(cache_root / f"{fingerprint}.arrow"),
        new_fingerprint=fingerprint,
        batch_size=TOKENIZED_RECORD_BATCH_ROWS,  # each batch is written as one record batch
        writer_batch_size=TOKENIZED_RECORD_BATCH_ROWS,
        desc="Tokenizing",
    )


def _numeric_column_message(source: str, mapping: ColumnMapping, name: str) -> str:
    """Why a column inferred as text cannot be: it holds only numbers; and the mapping that says what it is."""
    key, roles = mapping.sources[name], {"sent0": "anchor", "sent1": "positive", "hard_neg": "hard negative"}
    if name == "hard_neg":
        fix = f"for scored pairs set data.columns: {{sent0: {mapping.sources['sent0']}, sent1: "
        fix += f"{mapping.sources['sent1']}, score: {key}}}"
    else:
        fix = "set data.columns to say which columns are text (sent0, sent1, hard_neg) and which is the score"
    return (
        f"training data {source}: column '{key}' holds only numbers, so it is not the {roles[name]} text ({name}) "
        f"that the header made it; {fix}"
    )
