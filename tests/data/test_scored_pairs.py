import pytest

from cse.data.scored_pairs import read_scored_pairs
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
    path = _write(tmp_path, "dev.csv", 'sentence1,sentence2,score\n"Hello, world",Hi there,4.2\n')
    pairs = read_scored_pairs(path)
    assert (pairs.sentence1, pairs.sentence2, pairs.scores) == (["Hello, world"], ["Hi there"], [4.2])


def test_sick_layout(tmp_path):
    path = _write(
        tmp_path,
        "SICK_trial.txt",
        "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n"
        "4\tThe young boys are playing\tThe kids are playing\t3.6\tNEUTRAL\n",
    )
    pairs = read_scored_pairs(path)
    assert (pairs.sentence1, pairs.sentence2, pairs.scores) == (
        ["The young boys are playing"],
        ["The kids are playing"],
        [3.6],
    )


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
