"""Table sources through `load_examples`: rows streamed in chunks to a cached Arrow file, read once, warnings kept."""

import csv
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import Dataset, DatasetDict, Value

import cse.data.rows as rows_module
import cse.data.training_data as training_data
from cse.data import table_cache
from cse.data.training_data import ROWS_CACHE_VERSION, load_examples
from cse.errors import InputError

MAPPING = {"sent1": "second", "sent0": "first", "score": "labels.label"}  # not in canonical order: order is kept
SCORE_RANGE = (0.0, 5.0)
FORMATS = ["csv", "tsv", "jsonl", "json", "parquet", "save_to_disk"]


def _rows(count: int) -> list[dict]:
    """Texts with commas, quotes, spaces to strip and non-ASCII; a nested score in [0, 5]."""
    return [
        {
            "id": index,
            "first": f' row {index}, "quoted" café ',
            "second": f"positive {index} \u2014 näive",
            "labels": {"label": round(5 * ((index * 7) % 11) / 10, 2)},
        }
        for index in range(count)
    ]


def _write(directory: Path, fmt: str, rows: list[dict]) -> Path:
    if fmt in ("csv", "tsv"):  # nested keys are flattened column names with a dot
        path = directory / f"train.{fmt}"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
            writer.writerow(["id", "first", "second", "labels.label"])
            writer.writerows([row["id"], row["first"], row["second"], row["labels"]["label"]] for row in rows)
    elif fmt == "jsonl":
        path = directory / "train.jsonl"
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    elif fmt == "json":
        path = directory / "train.json"
        path.write_text(json.dumps(rows, indent=1))
    elif fmt == "parquet":
        path = directory / "train.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        path = directory / "saved"
        DatasetDict({"train": Dataset.from_list(rows)}).save_to_disk(str(path))
    return path


def _naive(path: Path, fmt: str) -> dict[str, list]:
    """The expected columns, read with csv / json / pyarrow directly and mapped by hand."""
    if fmt in ("csv", "tsv"):
        with path.open(newline="") as handle:
            records = list(csv.DictReader(handle, delimiter="," if fmt == "csv" else "\t"))
        triples = [(r["first"], r["second"], float(r["labels.label"])) for r in records]
    else:
        if fmt == "jsonl":
            records = [json.loads(line) for line in path.read_text().splitlines()]
        elif fmt == "json":
            records = json.loads(path.read_text())
        elif fmt == "parquet":
            records = pq.read_table(path).to_pylist()
        else:  # save_to_disk writes Arrow streams
            records = pa.ipc.open_stream(next((path / "train").glob("*.arrow"))).read_all().to_pylist()
        triples = [(r["first"], r["second"], float(r["labels"]["label"])) for r in records]
    low, high = SCORE_RANGE
    return {
        "sent1": [second.strip() for _, second, _ in triples],
        "sent0": [first.strip() for first, _, _ in triples],
        "score": [(score - low) / (high - low) for _, _, score in triples],
    }


def _cache_files(cache: Path) -> list[str]:
    """Every file the cache directory holds, temporary (hidden) ones included."""
    return sorted(file.name for file in cache.rglob("*") if file.is_file()) if cache.exists() else []


def _parser_must_not_run(monkeypatch) -> None:
    """From now on `load_examples` may read a source's header, but advancing its rows fails the test."""
    read_rows = training_data.read_rows

    def header_only(source, cache_dir=None):
        header, _, hub_files = read_rows(source, cache_dir)

        def rows():
            raise AssertionError(f"the rows of {source} were parsed again")
            yield

        return header, rows(), hub_files

    monkeypatch.setattr(training_data, "read_rows", header_only)


@pytest.mark.parametrize("fmt", FORMATS)
def test_rows_in_the_arrow_cache_equal_a_naive_reading(tmp_path, fmt):
    path = _write(tmp_path, fmt, _rows(23))
    cache = tmp_path / "cache"
    examples = load_examples(str(path), MAPPING, SCORE_RANGE, cache_dir=str(cache))
    expected = _naive(path, fmt)
    assert examples.dataset.column_names == list(expected)
    assert examples.dataset["sent0"] == expected["sent0"] and examples.dataset["sent1"] == expected["sent1"]
    assert examples.dataset["score"] == pytest.approx(expected["score"], abs=1e-12)
    assert examples.dataset.features == {"sent1": Value("string"), "sent0": Value("string"), "score": Value("float64")}
    arrow = cache / "cse-tokenized" / f"{examples.fingerprint}.{ROWS_CACHE_VERSION}.arrow"
    assert [Path(file["filename"]) for file in examples.dataset.cache_files] == [arrow]  # memory-mapped, not in RAM
    assert _cache_files(cache) == [arrow.name, f"{examples.fingerprint}.{ROWS_CACHE_VERSION}.json"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_several_chunks_give_the_same_rows(tmp_path, monkeypatch, fmt):
    rows = _rows(10)
    rows[4]["second"] = "  "  # a bad row, skipped: chunks count kept rows
    path = _write(tmp_path, fmt, rows)
    whole = load_examples(str(path), MAPPING, SCORE_RANGE, "skip", str(tmp_path / "whole"))
    monkeypatch.setattr(table_cache, "CHUNK_ROWS", 4)
    chunked = load_examples(str(path), MAPPING, SCORE_RANGE, "skip", str(tmp_path / "chunked"))
    assert chunked.warnings == whole.warnings and whole.warnings[0].startswith("skipped 1 bad rows")
    expected = _naive(path, fmt)
    expected = {name: values[:4] + values[5:] for name, values in expected.items()}
    assert chunked.dataset.to_dict() == whole.dataset.to_dict()
    assert chunked.dataset["sent0"] == expected["sent0"] and chunked.dataset["score"] == expected["score"]
    with pa.ipc.open_stream(chunked.dataset.cache_files[0]["filename"]) as reader:
        sizes = [batch.num_rows for batch in reader]
    assert sizes == [4, 4, 1]


@pytest.mark.parametrize(
    ("rows", "columns", "message"),
    [
        ("a b,c d,1\n" * 5 + "e f,,2\n" + "g h,i j,3\n", {"sent0": "x", "sent1": "y", "score": "z"}, "line 7: column"),
        ("a b,c d,1\n" * 5 + "e f,g h\n", {"sent0": "x", "sent1": "y", "score": "z"}, "line 7: 2 fields"),
        ("a b,c d,1\n" * 5 + "e f,g h,2\n", None, "column 'z' holds only numbers"),  # found at the end of the file
        (",c d,1\n" * 5, {"sent0": "x", "sent1": "y"}, "line 2: column 'x' is empty"),
    ],
)
def test_a_failed_reading_leaves_no_cache_file(tmp_path, monkeypatch, rows, columns, message):
    monkeypatch.setattr(table_cache, "CHUNK_ROWS", 2)  # some chunks are written before the bad row
    path = tmp_path / "train.csv"
    path.write_text("x,y,z\n" + rows)
    cache = tmp_path / "cache"
    with pytest.raises(InputError, match=re.escape(message)):
        load_examples(str(path), columns, cache_dir=str(cache))
    assert _cache_files(cache) == []


def test_no_usable_rows_leaves_no_cache_file(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("x,y\na,\nb,\n")
    cache = tmp_path / "cache"
    with pytest.raises(InputError, match=r"no usable rows \(skipped 2 bad rows, first: line 2: column 'y' is empty\)"):
        load_examples(str(path), {"sent0": "x", "sent1": "y"}, on_bad_rows="skip", cache_dir=str(cache))
    assert _cache_files(cache) == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_second_call_opens_the_cache_without_parsing(tmp_path, monkeypatch, fmt):
    path = _write(tmp_path, fmt, _rows(12))
    cache = str(tmp_path / "cache")
    first = load_examples(str(path), MAPPING, SCORE_RANGE, cache_dir=cache)
    _parser_must_not_run(monkeypatch)
    second = load_examples(str(path), MAPPING, SCORE_RANGE, cache_dir=cache)
    assert second.dataset.to_dict() == first.dataset.to_dict()
    assert second.mapping == first.mapping and second.fingerprint == first.fingerprint
    with pytest.raises(AssertionError, match="parsed again"):  # another score_range is another cache file
        load_examples(str(path), MAPPING, (0.0, 10.0), cache_dir=cache)


def test_a_changed_file_is_parsed_again(tmp_path):
    path = _write(tmp_path, "csv", _rows(6))
    cache = str(tmp_path / "cache")
    first = load_examples(str(path), MAPPING, SCORE_RANGE, cache_dir=cache)
    path.write_text(path.read_text().replace("row 3,", "row three,"))
    second = load_examples(str(path), MAPPING, SCORE_RANGE, cache_dir=cache)
    assert second.fingerprint != first.fingerprint
    assert second.dataset["sent0"] == _naive(path, "csv")["sent0"] != first.dataset["sent0"]


def test_a_cache_file_without_its_notes_is_written_again(tmp_path):
    path = _write(tmp_path, "jsonl", _rows(5))
    cache = tmp_path / "cache"
    first = load_examples(str(path), MAPPING, SCORE_RANGE, cache_dir=str(cache))
    (cache / "cse-tokenized" / f"{first.fingerprint}.{ROWS_CACHE_VERSION}.json").unlink()
    again = load_examples(str(path), MAPPING, SCORE_RANGE, cache_dir=str(cache))
    assert again.dataset.to_dict() == first.dataset.to_dict()
    assert len(_cache_files(cache)) == 2


def test_warnings_are_given_again_on_a_cache_hit(tmp_path, monkeypatch):
    path = tmp_path / "train.csv"
    path.write_text("sentence1,sentence2,score\na b,c d,3\n,e f,3\ng h,i j,3.0\nk l,m n,high\n")
    cache = str(tmp_path / "cache")

    def warned() -> tuple[str, ...]:
        examples = load_examples(str(path), on_bad_rows="skip", cache_dir=cache)
        assert examples.dataset["sent0"] == ["a b", "g h"] and examples.dataset["score"] == [3.0, 3.0]
        return examples.warnings

    first = warned()
    assert first == (
        f"skipped 2 bad rows of {path} (first: line 3: column 'sentence1' is empty)",
        f"all 2 scores of {path} are 3: CoSENT (the default model.scored_loss) learns nothing from pairs whose "
        "scores do not vary; cosine_mse regresses onto them",
    )
    _parser_must_not_run(monkeypatch)
    assert warned() == first


def test_scores_that_vary_are_not_warned_about_on_a_hit(tmp_path, monkeypatch):
    path = _write(tmp_path, "jsonl", _rows(4))
    cache = str(tmp_path / "cache")
    load_examples(str(path), MAPPING, SCORE_RANGE, cache_dir=cache)
    _parser_must_not_run(monkeypatch)
    examples = load_examples(str(path), MAPPING, SCORE_RANGE, cache_dir=cache)
    assert min(examples.dataset["score"]) < max(examples.dataset["score"]) and examples.warnings == ()


def test_a_hub_dataset_is_read_again_when_datasets_loads_a_new_revision(tmp_path, monkeypatch):
    """A hub name alone does not say which revision `load_dataset` gave: the Arrow files that hold it do."""
    revisions = []
    for revision, texts in enumerate((["old a", "old b"], ["new a", "new b", "new c"])):
        Dataset.from_dict({"sent0": texts, "sent1": [f"{text}!" for text in texts]}).save_to_disk(
            tmp_path / f"r{revision}"
        )
        revisions.append(Dataset.load_from_disk(str(tmp_path / f"r{revision}")))  # backed by its own Arrow files
    loaded = iter(revisions)
    monkeypatch.setattr(rows_module, "load_dataset", lambda name, split, cache_dir: next(loaded))
    first = load_examples("someone/pairs", cache_dir=str(tmp_path / "cache"))
    second = load_examples("someone/pairs", cache_dir=str(tmp_path / "cache"))
    assert first.dataset["sent0"] == ["old a", "old b"]
    assert second.dataset["sent0"] == ["new a", "new b", "new c"]  # not the cached table of the old revision
    assert first.fingerprint != second.fingerprint  # so the tokenized cache is not reused either
