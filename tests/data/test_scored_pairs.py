import re

import pytest

from cse.data.scored_pairs import ScoredPairs, read_scored_pairs
from cse.data.training_data import load_examples
from cse.errors import InputError


def _write(tmp_path, name: str, text: str | bytes):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_stsb_release_layout_with_quotes_and_extra_fields(tmp_path):
    path = _write(
        tmp_path,
        "sts-dev.csv",
        "main-captions\tMSRvid\t2012test\t0000\t5.000\tA man with a hard hat is dancing.\tA man wearing a hard hat.\n"
        'main-news\theadlines\t2015\t0001\t0.5\t"Quoted  start\tend" here\tsource-a\tsource-b\n',
    )
    pairs = read_scored_pairs(path)
    assert pairs.scores == [5.0, 0.5]
    assert pairs.sentence1 == ["A man with a hard hat is dancing.", '"Quoted start']
    assert pairs.sentence2 == ["A man wearing a hard hat.", 'end" here']


def test_header_tsv_in_any_column_order(tmp_path):
    path = _write(tmp_path, "dev.tsv", "score\tsentence2\tsentence1\n3.5\tb  two\ta one\n\n1\td\tc\n")
    pairs = read_scored_pairs(path)
    assert (pairs.sentence1, pairs.sentence2, pairs.scores) == (["a one", "c"], ["b two", "d"], [3.5, 1.0])


def test_header_csv_with_quoted_commas(tmp_path):
    path = _write(tmp_path, "dev.csv", 'sentence1,sentence2,score\n"Hello, world",Hi there,4.2\na,"b ""c""",1\n')
    pairs = read_scored_pairs(path)
    assert (pairs.sentence1, pairs.sentence2, pairs.scores) == (["Hello, world", "a"], ["Hi there", 'b "c"'], [4.2, 1])


def test_sick_layout(tmp_path):
    path = _write(
        tmp_path,
        "SICK_trial.txt",
        "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n"
        "4\tThe young boys are playing\tThe kids are playing\t3.6\tNEUTRAL\n"
        "5\tA dog runs\tNobody sings\t1.2\tCONTRADICTION\n",
    )
    pairs = read_scored_pairs(path)
    assert (pairs.sentence1, pairs.sentence2, pairs.scores) == (
        ["The young boys are playing", "A dog runs"],
        ["The kids are playing", "Nobody sings"],
        [3.6, 1.2],
    )


@pytest.mark.parametrize(
    ("header", "taken"),
    [
        ("sentence1,sentence2,label,score", [4.0, 1.5, 2.5]),
        ("sentence1,sentence2,score,label", [0.0, 1.0, 2.0]),
        ("sentence1,sentence2,label,relatedness_score", [4.0, 1.5, 2.5]),
    ],
)
def test_of_several_score_columns_the_one_training_takes(tmp_path, header, taken):
    """The preferred name (score, relatedness_score, label, ...) wins wherever it stands, in both readers."""
    path = _write(tmp_path, "dev.csv", f"{header}\na b,c d,0,4\ne f,g h,1,1.5\ni j,k l,2,2.5\n")
    assert read_scored_pairs(path).scores == taken
    examples = load_examples(str(path), cache_dir=str(tmp_path / "cache"))
    assert examples.dataset["score"] == taken


def test_generated_quickstart_dev_file(tiny_data):
    pairs = read_scored_pairs(tiny_data.dev_file)
    assert len(pairs) == 60 and all(0.0 <= score <= 5.0 for score in pairs.scores)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("g\tf\ty\t1\t2.0\tonly one sentence\n", "line 1: expected at least 7 fields, found 6"),
        ("sentence1\tsentence2\tscore\na\tb\t4\nc\td\tabc\n", "line 3: score 'abc' is not a number"),
        ("sentence1\tsentence2\tscore\na\tb\t\n", "line 2: score '' is not a number"),
        ("sentence1\tsentence2\nx\ty\n", "header has no score column"),
        ("sentence1\tsentence2\tscore\n\n", "no scored pairs"),
        ("a,b,1\n", "line 1: no header"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, text, message):
    path = _write(tmp_path, "bad.tsv", text)
    with pytest.raises(InputError, match=message):
        read_scored_pairs(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("", "file is empty"),
        (b"ok\n\x00\x01binary", "line 2: contains NUL bytes"),
        (b"caf\xe9\n", "line 1: not valid UTF-8"),
    ],
)
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "dev.tsv"
    if content is not None:
        _write(tmp_path, "dev.tsv", content)
    with pytest.raises(InputError, match=message) as error:
        read_scored_pairs(path)
    assert str(path) in str(error.value)


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        read_scored_pairs(tmp_path)


@pytest.mark.parametrize(
    "text",
    [
        "sentence1\tsentence2\tscore\na b\tc d\t4\ne f\tg h\t1.5\n",
        "sentence1,sentence2,score\na b,c d,4\ne f,g h,1.5\n",
        "x\ty\tz\t0\t4\ta b\tc d\nx\ty\tz\t1\t1.5\te f\tg h\n",  # STS-B layout, no header
    ],
)
def test_byte_order_mark_and_windows_line_ends_change_nothing(tmp_path, text):
    expected = read_scored_pairs(_write(tmp_path, "plain.tsv", text))
    pairs = read_scored_pairs(_write(tmp_path, "marked.tsv", ("\ufeff" + text.replace("\n", "\r\n")).encode()))
    assert pairs == expected == ScoredPairs(["a b", "e f"], ["c d", "g h"], [4.0, 1.5])


def test_one_pair_per_newline_whatever_else_the_line_holds(tmp_path):
    odd = ["form\ffeed", "line\u2028sep", "para\u2029sep", "v\vtab", "next\x85line", "fs\x1cgs\x1drs\x1eus"]
    text = "sentence1\tsentence2\tscore\n" + "".join(f"{s}\tplain\t{i}\n" for i, s in enumerate(odd))
    pairs = read_scored_pairs(_write(tmp_path, "dev.tsv", text))
    assert pairs.sentence1 == [" ".join(s.split()) for s in odd]  # SentEval's whitespace normalisation
    assert pairs.scores == [float(i) for i in range(len(odd))]


@pytest.mark.parametrize(
    ("score", "message"),
    [
        ("nan", "line 3: score 'nan' is not finite"),
        ("-inf", "line 3: score '-inf' is not finite"),
        ("1" + "0" * 40, f"line 3: score '1{'0' * 40}' is too large (beyond float32's ±3.4e38)"),
        ("1e999", "line 3: score '1e999' is too large"),
    ],
)
def test_scores_that_parse_but_cannot_be_used(tmp_path, score, message):
    path = _write(tmp_path, "dev.tsv", f"sentence1\tsentence2\tscore\na\tb\t1\nc\td\t{score}\ne\tf\t2\n")
    with pytest.raises(InputError, match=re.escape(f"{path} {message}")):
        read_scored_pairs(path)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("a\tb\t3\n", "dev file {path}: only 1 scored pair; Spearman's correlation needs at least 2"),
        ("a\tb\t2.5\nc\td\t2.5\ne\tf\t2.50\n", "dev file {path}: all 3 scores are 2.5; Spearman's correlation is"),
    ],
)
def test_scores_that_leave_spearman_undefined(tmp_path, rows, message):
    path = _write(tmp_path, "dev.tsv", "sentence1\tsentence2\tscore\n" + rows)
    with pytest.raises(InputError, match=re.escape(message.format(path=path))):
        read_scored_pairs(path)


def test_broken_csv_quote_names_its_line(tmp_path):
    path = _write(tmp_path, "dev.csv", 'sentence1,sentence2,score\na,b,1\n"c,d,2\ne,f,3\n')
    with pytest.raises(InputError, match=f"{re.escape(str(path))} line 3: a quoted field is not closed on this line"):
        read_scored_pairs(path)
