"""Every training format through `load_examples`, with column mapping, nested keys and bad rows."""

import json

import pytest
from datasets import Dataset, DatasetDict

from cse.data.training_data import load_examples
from cse.errors import InputError

ROWS = [
    {"guid": "a", "sentence1": "A man plays.", "sentence2": "Someone plays.", "labels": {"label": 4.2, "binary": 1}},
    {"guid": "b", "sentence1": "It rains.", "sentence2": "A cat sleeps.", "labels": {"label": 0.4, "binary": 0}},
]
MAPPING = {"sent0": "sentence1", "sent1": "sentence2", "score": "labels.label"}
EXPECTED = {"sent0": ["A man plays.", "It rains."], "sent1": ["Someone plays.", "A cat sleeps."], "score": [4.2, 0.4]}


def _write(directory, fmt: str) -> str:
    """The same two KLUE-STS-like rows (nested score) in each supported format."""
    if fmt == "jsonl":
        path = directory / "train.jsonl"
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in ROWS))
    elif fmt == "json":
        path = directory / "train.json"
        path.write_text(json.dumps(ROWS))
    elif fmt == "parquet":
        path = directory / "train.parquet"
        Dataset.from_list(ROWS).to_parquet(str(path))
    elif fmt == "save_to_disk":
        path = directory / "saved"
        DatasetDict({"train": Dataset.from_list(ROWS)}).save_to_disk(str(path))
    else:  # csv / tsv: nested keys are flattened column names with a dot
        separator = "," if fmt == "csv" else "\t"
        path = directory / f"train.{fmt}"
        lines = [separator.join(["sentence1", "sentence2", "labels.label"])]
        lines += [separator.join([row["sentence1"], row["sentence2"], str(row["labels"]["label"])]) for row in ROWS]
        path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "json", "parquet", "save_to_disk"])
def test_every_format_with_a_nested_score_column(tmp_path, fmt):
    examples = load_examples(_write(tmp_path, fmt), columns=MAPPING, cache_dir=str(tmp_path / "cache"))
    assert examples.mapping.mode == "scored"
    assert examples.dataset.to_dict() == EXPECTED


def test_score_range_maps_onto_unit_interval(tmp_path):
    examples = load_examples(_write(tmp_path, "jsonl"), columns=MAPPING, score_range=(0.0, 5.0))
    assert examples.dataset["score"] == pytest.approx([4.2 / 5, 0.4 / 5])


@pytest.mark.parametrize(
    ("header", "mode", "columns"),
    [
        ("sent0,sent1,hard_neg", "triplets", ["sent0", "sent1", "hard_neg"]),
        ("sent0,sent1", "pairs", ["sent0", "sent1"]),
        ("premise,hypothesis,contradiction", "triplets", ["sent0", "sent1", "hard_neg"]),  # by column order
        ("text", "unsupervised", ["sent0"]),
        ("sentence1,sentence2,score", "scored", ["sent0", "sent1", "score"]),
    ],
)
def test_mode_follows_the_columns(tmp_path, header, mode, columns):
    path = tmp_path / "train.csv"
    values = ["x y", "z w", "3"][: header.count(",") + 1]
    path.write_text(f"{header}\n{','.join(values)}\n")
    examples = load_examples(str(path))
    assert examples.mapping.mode == mode and examples.dataset.column_names == columns


def test_simcse_nli_layout_with_quoted_commas(tmp_path):
    path = tmp_path / "nli.csv"
    path.write_text('sent0,sent1,hard_neg\n"Two men, one tall, talk .",Two men talk .,Nobody talks .\n')
    assert load_examples(str(path)).dataset.to_dict() == {
        "sent0": ["Two men, one tall, talk ."],
        "sent1": ["Two men talk ."],
        "hard_neg": ["Nobody talks ."],
    }


BAD_ROWS = [
    ("sent0,sent1\na,b\n,c\n", "line 3: column 'sent0' is empty"),
    ("sent0,sent1\na,b\nc,d,e\n", "line 3: 3 fields, the header has 2"),
    ("sent0,sent1\na,b\nc\n", "line 3: 1 fields, the header has 2"),
    ("sentence1,sentence2,score\na,b,1\nc,d,high\n", "line 3: column 'score': score 'high' is not a number"),
    ("sentence1,sentence2,score\na,b,1\nc,d,nan\n", "line 3: column 'score': score 'nan' is not finite"),
]


@pytest.mark.parametrize(("content", "message"), BAD_ROWS)
def test_bad_rows_name_file_line_and_column(tmp_path, content, message):
    path = tmp_path / "train.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as error:
        load_examples(str(path))
    assert str(path) in str(error.value)


@pytest.mark.parametrize(("content", "message"), BAD_ROWS)
def test_bad_rows_can_be_skipped_and_counted(tmp_path, content, message):
    path = tmp_path / "train.csv"
    path.write_text(content)
    with pytest.warns(UserWarning, match=f"skipped 1 bad rows of {path}"):
        examples = load_examples(str(path), on_bad_rows="skip")
    assert len(examples.dataset) == 1


def test_jsonl_errors(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"sent0": "a", "sent1": "b"}\n{"sent0": "c"\n')
    with pytest.raises(InputError, match="line 2: not valid JSON"):
        load_examples(str(path))
    path.write_text('{"sentence1": "a", "labels": {"label": 1}}\n{"sentence1": "c", "labels": {}}\n')
    with pytest.raises(InputError, match="line 2: no column 'labels.label'"):
        load_examples(str(path), columns={"sent0": "sentence1", "sent1": "sentence1", "score": "labels.label"})


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"sent0": "sentence1", "sent1": "missing"}, "data.columns.sent1: no column 'missing'"),
        ({"anchor": "sentence1"}, "data.columns: unknown key 'anchor'"),
        ({"sent1": "sentence1"}, "sent0 .* is required"),
        ({"sent0": "sentence1", "score": "labels.label"}, "hard_neg and score need sent1"),
    ],
)
def test_bad_column_mapping(tmp_path, columns, message):
    with pytest.raises(InputError, match=message):
        load_examples(_write(tmp_path, "jsonl"), columns=columns)


def test_score_outside_range(tmp_path):
    with pytest.raises(
        InputError, match=r"line 1: column 'labels.label': score 4.2 is outside data.score_range \[0.0, 1.0\]"
    ):
        load_examples(_write(tmp_path, "jsonl"), columns=MAPPING, score_range=(0.0, 1.0))


def test_unsupported_suffix_and_bad_directory(tmp_path):
    (tmp_path / "train.xlsx").write_text("x")
    with pytest.raises(InputError, match="unsupported format '.xlsx'"):
        load_examples(str(tmp_path / "train.xlsx"))
    with pytest.raises(InputError, match="not one written by datasets' save_to_disk"):
        load_examples(str(tmp_path))
