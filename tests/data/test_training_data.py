"""Every training format through `load_examples`, with column mapping, nested keys and bad rows."""

import json
import logging
import os
import re
import shutil
from pathlib import Path

import datasets
import pytest
from datasets import Dataset, DatasetDict

from cse.data.training_data import load_examples, warn_unused_columns
from cse.errors import InputError

ROWS = [
    {"guid": "a", "sentence1": "A man plays.", "sentence2": "Someone plays.", "labels": {"label": 4.2, "binary": 1}},
    {"guid": "b", "sentence1": "It rains.", "sentence2": "A cat sleeps.", "labels": {"label": 0.4, "binary": 0}},
]
MAPPING = {"sent0": "sentence1", "sent1": "sentence2", "score": "labels.label"}
EXPECTED = {"sent0": ["A man plays.", "It rains."], "sent1": ["Someone plays.", "A cat sleeps."], "score": [4.2, 0.4]}


@pytest.fixture(autouse=True)
def _default_cache_in_tmp(tmp_path, monkeypatch):
    """`load_examples` without `cache_dir` caches rows in `datasets`' cache: the tests' go to their tmp_path."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")


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
    values = ["x y", "z w", "3" if mode == "scored" else "u v"][: header.count(",") + 1]
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
    examples = load_examples(str(path), on_bad_rows="skip")
    assert len(examples.dataset) == 1
    assert examples.warnings[0] == f"skipped 1 bad rows of {path} (first: {message})"  # then a score warning, if any


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


BOM = "\ufeff"


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "json", "txt"])
@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_byte_order_mark_and_windows_line_ends_change_nothing(tmp_path, fmt, line_end):
    """The same rows with and without a BOM (what spreadsheet programs write) give the same mode and examples."""
    rows = [("A man plays.", "Someone plays.", "4.2"), ("It rains.", "A cat sleeps.", "0.4")]
    if fmt in ("csv", "tsv"):
        separator = "," if fmt == "csv" else "\t"
        lines = [separator.join(["sentence1", "sentence2", "score"]), *(separator.join(row) for row in rows)]
    elif fmt == "jsonl":
        lines = [json.dumps({"sentence1": a, "sentence2": b, "score": float(s)}) for a, b, s in rows]
    elif fmt == "json":
        lines = json.dumps([{"sentence1": a, "sentence2": b, "score": float(s)} for a, b, s in rows], indent=1)
        lines = lines.split("\n")
    else:
        lines = [a for a, _, _ in rows]
    plain, marked = tmp_path / f"plain.{fmt}", tmp_path / f"bom.{fmt}"
    plain.write_bytes("".join(line + "\n" for line in lines).encode())
    marked.write_bytes((BOM + "".join(line + line_end for line in lines)).encode())
    expected = load_examples(str(plain), cache_dir=str(tmp_path / "cache"))
    examples = load_examples(str(marked), cache_dir=str(tmp_path / "cache"))
    assert examples.mapping.mode == expected.mapping.mode == ("unsupervised" if fmt == "txt" else "scored")
    assert examples.dataset.to_dict() == expected.dataset.to_dict()
    assert examples.dataset["sent0"] == [a for a, _, _ in rows]
    if fmt != "txt":
        assert examples.dataset["score"] == [4.2, 0.4]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl"])
def test_one_row_per_newline_whatever_else_the_line_holds(tmp_path, fmt):
    texts = ["form\ffeed", "line\u2028separator", "para\u2029graph", "vertical\vtab", "next\x85line"]
    texts += ["fs\x1cgs\x1drs\x1eus", "a Windows line end"]
    if fmt == "jsonl":
        lines = [json.dumps({"sent0": text}, ensure_ascii=False) for text in texts]
    else:
        lines = ["sent0", *texts]
    path = tmp_path / f"train.{fmt}"
    path.write_bytes(("\n".join(lines) + "\r\n").encode())
    assert load_examples(str(path)).dataset["sent0"] == texts


@pytest.mark.parametrize(
    ("header", "mode", "columns"),
    [
        ("sent0,sent1,score", "scored", ["sent0", "sent1", "score"]),
        ("text_a,text_b,similarity_score", "scored", ["sent0", "sent1", "score"]),
        ("q,d,Score", "scored", ["sent0", "sent1", "score"]),
    ],
)
def test_a_header_naming_a_score_trains_scored_pairs(tmp_path, header, mode, columns):
    path = tmp_path / "train.csv"
    path.write_text(f"{header}\nx y,z w,3\nu v,s t,1.5\n")
    examples = load_examples(str(path))
    assert examples.mapping.mode == mode and examples.dataset.column_names == columns
    assert examples.dataset["score"] == [3.0, 1.5]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("pairs.csv", "sent0, sent1\na b,c d\n", {"sent0": ["a b"], "sent1": ["c d"]}),
        (
            "triplets.csv",
            "sent0,sent1, hard_neg\na b,c d,e f\n",
            {"sent0": ["a b"], "sent1": ["c d"], "hard_neg": ["e f"]},
        ),
        (
            "scored.csv",
            "sent0,sent1,score \na b,c d,4.5\ne f,g h,1\n",
            {"sent0": ["a b", "e f"], "sent1": ["c d", "g h"], "score": [4.5, 1.0]},
        ),
        (
            "triplets.tsv",
            " sent0 \tsent1\t hard_neg\na b\tc d\te f\n",
            {"sent0": ["a b"], "sent1": ["c d"], "hard_neg": ["e f"]},
        ),
    ],
)
def test_header_names_are_read_without_surrounding_spaces(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_text(content)
    examples = load_examples(str(path))
    assert examples.dataset.to_dict() == expected and examples.unused_columns == ()


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("tabs.csv", "sent0\tsent1\na, b\tc d\n", {"sent0": ["a, b"], "sent1": ["c d"]}),
        ("commas.tsv", 'sent0,sent1\n"a\tb",c d\n', {"sent0": ["a\tb"], "sent1": ["c d"]}),
        ("sentences.csv", 'text\n"a, b"\nc\td\n', {"sent0": ["a, b", "c\td"]}),  # one column: commas in rows
        ("sentences.tsv", "text\na, b\nc d\n", {"sent0": ["a, b", "c d"]}),
    ],
)
def test_the_delimiter_follows_the_header_line(tmp_path, name, content, expected):
    """A header without the suffix's delimiter but with the other is split by that; one column keeps the suffix's."""
    path = tmp_path / name
    path.write_text(content)
    assert load_examples(str(path)).dataset.to_dict() == expected


def test_rows_split_otherwise_than_the_header_are_bad_rows(tmp_path):
    path = tmp_path / "tabs.csv"
    path.write_text("sent0\tsent1\na b\tc d\ne f,g h\n")
    with pytest.raises(InputError, match=re.escape(f"training data {path} line 3: 1 fields, the header has 2")):
        load_examples(str(path))


def test_a_column_named_twice_is_refused(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("sent0,sent1, sent0\na b,c d,e f\n")
    with pytest.raises(InputError, match=re.escape(f"training file {path} line 1: column 'sent0' appears twice")):
        load_examples(str(path))


@pytest.mark.parametrize(
    ("content", "unused", "read"),
    [
        ("sent0,sent1,Score\na b,c d,4\n", "'Score'", "pairs from {sent0: 'sent0', sent1: 'sent1'}"),  # case-sensitive
        (
            "id,sentence1,sentence2,label,score\n1,a b,c d,0,4\n2,e f,g h,1,2\n",
            "'id', 'label'",
            "scored from {sent0: 'sentence1', sent1: 'sentence2', score: 'score'}",
        ),
    ],
)
def test_columns_an_inferred_mapping_leaves_out_are_warned_about(tmp_path, content, unused, read, caplog):
    path = tmp_path / "train.csv"
    path.write_text(content)
    examples = load_examples(str(path))
    with caplog.at_level(logging.INFO):
        warn_unused_columns(str(path), examples)
    assert [record.getMessage() for record in caplog.records] == [
        f"warning: training data {path}: column(s) {unused} not used; read as {read} (set data.columns to train on "
        "others)"
    ]


@pytest.mark.parametrize(
    ("content", "columns"),
    [
        ("sent0,sent1,,\na b,c d,,\n", None),  # unnamed (trailing) columns are not reported
        ("sent0,sent1,Score\na b,c d,4\n", {"sent0": "sent0", "sent1": "sent1"}),  # a mapping says what to use
    ],
)
def test_no_warning_for_unnamed_columns_or_a_given_mapping(tmp_path, content, columns, caplog):
    path = tmp_path / "train.csv"
    path.write_text(content)
    examples = load_examples(str(path), columns=columns)
    with caplog.at_level(logging.INFO):
        warn_unused_columns(str(path), examples)
    assert caplog.records == []
    assert examples.unused_columns == () and examples.mapping.mode == "pairs"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "bom.csv",  # a score column under a name cse does not know (an empty cell says nothing either way)
            f"{BOM}s1,s2,sim\na b,c d,4.5\ne f,g h,\ni j,k l,1e2\n",
            "column 'sim' holds only numbers, so it is not the hard negative text (hard_neg) that the header made it; "
            "for scored pairs set data.columns: {sent0: s1, sent1: s2, score: sim}",
        ),
        ("labels.csv", "sentence,label\na b,1\nc d,0\n", "column 'label' holds only numbers, so it is not the pos"),
        ("ids.tsv", "id\tsentence\n1\ta b\n2\tc d\n", "column 'id' holds only numbers, so it is not the anchor"),
        ("typed.jsonl", '{"a": "x y", "b": "z w", "c": 3}\n{"a": "u v", "b": "s t", "c": 1.5}\n', "column 'c' holds"),
        ("named.csv", "sent0,sent1,hard_neg\na b,c d,1\ne f,g h,2\n", "column 'hard_neg' holds only numbers"),
    ],
)
def test_a_numeric_column_is_never_inferred_to_be_text(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    for on_bad_rows in ("error", "skip"):
        with pytest.raises(InputError, match=re.escape(message)) as error:
            load_examples(str(path), on_bad_rows=on_bad_rows)
        assert str(error.value).startswith(f"training data {path}: ")


def test_numbers_are_text_where_the_mapping_says_so_or_the_column_also_holds_words(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("a,b\nx y,42\nz w,1984\n")
    examples = load_examples(str(path), columns={"sent0": "a", "sent1": "b"})
    assert examples.dataset["sent1"] == ["42", "1984"]
    path.write_text("a,b\nx y,42\nz w,nineteen eighty-four\n")
    assert load_examples(str(path)).dataset["sent1"] == ["42", "nineteen eighty-four"]


@pytest.mark.parametrize(
    ("score", "message"),
    [
        ("NaN", "score nan is not finite"),
        ("-Infinity", "score -inf is not finite"),
        ("1" + "0" * 400, "score 10000000000000000000...00000000 (401 characters) is too large"),
        ("1e39", "score 1e+39 is too large (beyond float32's ±3.4e38)"),
        ("true", "score True is not a number"),
        ('"1e999"', "score '1e999' is too large"),
    ],
)
def test_scores_that_parse_but_cannot_be_used(tmp_path, score, message):
    path = tmp_path / "train.jsonl"
    row = '{{"sentence1": "{}", "sentence2": "{}", "score": {}}}\n'
    path.write_text(row.format("x", "y", 2) + row.format("a", "b", score))
    with pytest.raises(InputError, match=re.escape(f"training data {path} line 2: column 'score': {message}")):
        load_examples(str(path))


CORRUPT_TEXT = [
    ("broken_quote.csv", 'sent0,sent1\na b,c d\n"e f,g h\ni j,k l\n', "line 3: a quoted field is not closed on"),
    ("after_quote.csv", 'sent0,sent1\n"a" b,c d\ne f,g h\n', "line 2: text after the closing quote of a field"),
    ("lone_cr.tsv", "sent0\tsent1\na\rb\tc d\ne f\tg h\n", r"line 2: a lone carriage return (\r) inside an unquoted"),
    ("truncated.jsonl", '{"sent0": "a b", "sent1": "c d"}\n{"sent0": "e f", "se', "line 2: not valid JSON"),
    ("truncated.json", '[{"sent0": "a b", "sent1": "c d"},\n {"sent0": "e', "line 2: not valid JSON"),
    ("bad_first.jsonl", '{"sent0": "a b", \n{"sent0": "c d"}\n', "line 1: not valid JSON"),
    ("scalar.json", '"just a string"\n', ": expected an array of row objects or an object of column arrays"),
    ("ragged.json", '{"sent0": ["a", "b"], "sent1": ["c"]}', ": columns of different lengths ([1, 2])"),
]


@pytest.mark.parametrize(("name", "content", "message"), CORRUPT_TEXT)
def test_corrupt_text_formats_name_the_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content.encode())
    with pytest.raises(InputError, match=re.escape(message)) as error:
        load_examples(str(path))
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_broken_quote_swallows_no_rows(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text('sent0,sent1\na b,c d\n"e f,g h\ni j,k l\nm n,o p\n')
    examples = load_examples(str(path), on_bad_rows="skip")
    assert examples.dataset["sent0"] == ["a b", "i j", "m n"]
    assert examples.warnings == (
        f"skipped 1 bad rows of {path} (first: line 3: a quoted field is not closed on this "
        "line (a missing quote? a row must be one line))",
    )


def test_json_lines_in_a_json_file_and_columns_of_arrays(tmp_path):
    (tmp_path / "lines.json").write_text('{"sent0": "a b"}\n{"sent0": "c d"}\n')
    assert load_examples(str(tmp_path / "lines.json")).dataset["sent0"] == ["a b", "c d"]
    (tmp_path / "columns.json").write_text('{"sent0": ["a b", "c d"], "sent1": ["e f", "g h"]}')
    assert load_examples(str(tmp_path / "columns.json")).dataset.to_dict() == {
        "sent0": ["a b", "c d"],
        "sent1": ["e f", "g h"],
    }


def _parquet_bytes(tmp_path) -> bytes:
    path = tmp_path / "good.parquet"
    Dataset.from_list(ROWS * 50).to_parquet(str(path))
    return path.read_bytes()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda good: b"sent0,sent1\na,b\n", "not a readable parquet file (Parquet magic bytes not found in footer"),
        (lambda good: good[: len(good) // 2], "not a readable parquet file (Parquet magic bytes not found in footer"),
        (lambda good: b"", "not a readable parquet file (Parquet file size is 0 bytes)"),
        (None, "no such file"),
    ],
)
def test_parquet_that_is_not_parquet(tmp_path, make, message):
    path = tmp_path / "train.parquet"
    if make is not None:
        path.write_bytes(make(_parquet_bytes(tmp_path)))
    with pytest.raises(InputError, match=re.escape(f"training file {path}: {message}")):
        load_examples(str(path), columns=MAPPING)


def _damage_saved(directory, damage: str) -> None:
    arrow = next((directory / "train").glob("*.arrow"))
    if damage == "arrow missing":
        arrow.unlink()
    elif damage == "arrow truncated":
        arrow.write_bytes(arrow.read_bytes()[:100])
    elif damage == "state missing":
        (directory / "train" / "state.json").unlink()
    elif damage == "state corrupt":
        (directory / "train" / "state.json").write_text("{")
    elif damage == "split missing":
        shutil.rmtree(directory / "train")
    else:
        (directory / "dataset_dict.json").unlink()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("arrow missing", "an incomplete save_to_disk directory ({path}/train/data-00000-of-00001.arrow is missing)"),
        ("arrow truncated", "a damaged save_to_disk directory (ArrowInvalid: "),
        ("state missing", "an incomplete save_to_disk directory (No such file: '{path}/train/state.json'"),
        ("state corrupt", "a damaged save_to_disk directory (JSONDecodeError: "),
        ("split missing", "an incomplete save_to_disk directory (No such files: '{path}/train/dataset_info.json'"),
        ("top file missing", "a directory, but not one written by datasets' save_to_disk"),
    ],
)
def test_damaged_save_to_disk_directory(tmp_path, damage, message):
    path = Path(_write(tmp_path, "save_to_disk"))
    _damage_saved(path, damage)
    with pytest.raises(InputError, match=re.escape(f"training data {path}: {message.format(path=path)}")):
        load_examples(str(path), columns=MAPPING)


def test_training_scores_that_do_not_vary_are_warned_about(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("sentence1,sentence2,score\na b,c d,3\ne f,g h,3.0\n")
    examples = load_examples(str(path))
    assert examples.dataset["score"] == [3.0, 3.0]
    assert examples.warnings == (
        f"all 2 scores of {path} are 3: CoSENT (the default model.scored_loss) learns nothing from pairs whose scores "
        "do not vary; cosine_mse regresses onto them",
    )


@pytest.mark.parametrize("name", ["corpus.txt", "train.csv"])
def test_the_fingerprint_follows_the_file(tmp_path, name):
    """The tokenized cache's key: the same for the same file, new once it changes (even at the same size)."""
    path = tmp_path / name
    header = "sent0\n" if name.endswith(".csv") else ""
    path.write_text(f"{header}a dog runs\na man sits\n")
    first = load_examples(str(path), cache_dir=str(tmp_path / "cache")).fingerprint
    assert load_examples(str(path), cache_dir=str(tmp_path / "cache")).fingerprint == first
    stat = path.stat()
    path.write_text(f"{header}a cat runs\na man sits\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a later write, whatever the clock's grain
    changed = load_examples(str(path), cache_dir=str(tmp_path / "cache"))
    assert changed.fingerprint != first and changed.dataset["sent0"][0] == "a cat runs"


@pytest.mark.parametrize(
    ("first_line", "warned"),
    [
        ("a man is playing a guitar,a man plays guitar", True),  # no header: the first pair is taken for one
        ("premise,hypothesis", False),  # a header, read by position
        ("sent0,sent1", False),
    ],
)
def test_a_first_line_that_looks_like_text_is_said_to_be_read_as_the_header(tmp_path, first_line, warned):
    path = tmp_path / "pairs.csv"
    path.write_text(first_line + "\n" + "".join(f"a dog {index},a cat {index}\n" for index in range(4)))
    examples = load_examples(str(path))
    assert len(examples.dataset) == 4
    names = ", ".join(f"'{name}'" for name in first_line.split(","))
    expected = f"{path}: line 1 ({names}) is read as the header, not trained on; if the file has none, add one"
    assert [warning for warning in examples.warnings if "header" in warning] == (
        [f"{expected} (sent0,sent1)"] if warned else []
    )
