import shutil

import pytest

from cse.errors import InputError
from cse.evaluation.data_dir import resolve_data_dir
from cse.evaluation.sts_tasks import STS_YEARS, read_sts_subset, read_sts_task


def _subset(tmp_path, pairs: str, golds: str):
    (tmp_path / "STS.input.x.txt").write_bytes(pairs.encode("utf-8"))
    (tmp_path / "STS.gs.x.txt").write_bytes(golds.encode("utf-8"))
    return read_sts_subset(tmp_path / "STS.input.x.txt", tmp_path / "STS.gs.x.txt")


def test_subset_skips_unscored_pairs_and_normalises_whitespace(tmp_path):
    pairs = _subset(
        tmp_path,
        'A  "quoted start\tends" here \n'  # quotes are text, never field delimiters
        "unscored\tpair\r\n"  # STS15/16: a pair with an empty gold line is left out
        " leading\ttrailing \n",
        "4.2\n\n0\n",
    )
    assert pairs.sentence1 == ['A "quoted start', "leading"]
    assert pairs.sentence2 == ['ends" here', "trailing"]
    assert pairs.scores == [4.2, 0.0]


@pytest.mark.parametrize(
    ("pairs", "golds", "message"),
    [
        ("a\tb\nc\td\n", "1\n", r"STS.input.x.txt: 2 lines, but its gold scores STS.gs.x.txt has 1"),
        ("a\tb\n", "1\n2\n", r"STS.input.x.txt: 1 lines, but its gold scores STS.gs.x.txt has 2"),
        ("a\tb\nc\td\te\n", "1\n2\n", r"STS.input.x.txt line 2: expected 2 tab-separated sentences, found 3"),
        ("a b\n", "1\n", r"STS.input.x.txt line 1: expected 2 tab-separated sentences, found 1"),
        ("a\tb\n", "x\n", r"STS.gs.x.txt line 1: gold score 'x' is not a number"),
        ("a\tb\n", "\n", r"STS.gs.x.txt: no scored pairs"),
        ("a\tb\nc\td\n", "1\nnan\n", r"STS.gs.x.txt line 2: gold score 'nan' is not finite"),
        ("a\tb\nc\td\n", "1\n1e40\n", r"STS.gs.x.txt line 2: gold score '1e40' is too large"),
        ("a\tb\nc\td\n", "3\n3.0\n", r"STS.gs.x.txt: all 2 scores are 3; Spearman's correlation is undefined"),
        ("a\tb\nc\td\n", "3\n\n", r"STS.gs.x.txt: only 1 scored pair; Spearman's correlation needs at least 2"),
        # U+2028 in a sentence: splitlines() would make 3 input lines against 2 gold lines (or shift the pairs).
        ("a\u2028b\tc\nd\te\n", "1\n2\n\n", r"STS.input.x.txt: 2 lines, but its gold scores STS.gs.x.txt has 3"),
    ],
)
def test_subset_errors_name_the_file_and_line(tmp_path, pairs, golds, message):
    with pytest.raises(InputError, match=message):
        _subset(tmp_path, pairs, golds)


def test_a_pair_per_newline_whatever_else_the_line_holds(tmp_path):
    odd = ["form\ffeed", "line\u2028sep", "para\u2029sep", "v\vtab", "next\x85line", "fs\x1cgs\x1drs\x1eus", "lone\rcr"]
    pairs = _subset(
        tmp_path,
        "\ufeff" + "".join(f"{text}\tplain {i}\r\n" for i, text in enumerate(odd)),
        "\ufeff" + "".join(f"{i}\n" for i in range(len(odd))),
    )
    assert pairs.sentence1 == [" ".join(text.split()) for text in odd]  # SentEval's whitespace normalisation
    assert pairs.sentence2 == [f"plain {i}" for i in range(len(odd))]
    assert pairs.scores == [float(i) for i in range(len(odd))]


def test_undecodable_file_names_line(tmp_path):
    (tmp_path / "STS.input.x.txt").write_bytes(b"a\tb\nc\xff\td\n")
    (tmp_path / "STS.gs.x.txt").write_text("1\n2\n")
    with pytest.raises(InputError, match=r"STS.input.x.txt line 2: not valid utf-8"):
        read_sts_subset(tmp_path / "STS.input.x.txt", tmp_path / "STS.gs.x.txt")


def test_years_have_senteval_subsets(senteval_files):
    for year in STS_YEARS:
        subsets = read_sts_task(senteval_files.root, year, "test")
        assert list(subsets) == list(STS_YEARS[year]) == list(senteval_files.sts[year])
        for subset, rows in senteval_files.sts[year].items():
            scored = [row for row in rows if row[2] is not None]
            assert subsets[subset].sentence1 == [a for a, _, _ in scored]
            assert subsets[subset].sentence2 == [b for _, b, _ in scored]
            assert subsets[subset].scores == [gold for _, _, gold in scored]
    assert STS_YEARS["STS13"] == ("FNWN", "headlines", "OnWN")  # SentEval's STS13 has no SMT subset
    assert len(read_sts_task(senteval_files.root, "STS15", "test")["answers-forums"]) == 6  # 7 lines, 1 unscored


@pytest.mark.parametrize("mode", ["dev", "test"])
@pytest.mark.parametrize("task", ["STSBenchmark", "SICKRelatedness"])
def test_stsb_and_sick_read_the_split_of_the_mode(senteval_files, task, mode):
    pairs = read_sts_task(senteval_files.root, task, mode)
    rows = senteval_files.sts[task][mode]
    assert list(pairs) == [mode]
    first, second, scores = (list(column) for column in zip(*rows, strict=True))
    assert (pairs[mode].sentence1, pairs[mode].sentence2, pairs[mode].scores) == (first, second, scores)


def test_missing_files_and_dev_mode_for_years(senteval_files, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(senteval_files.root, root)
    (root / "STS" / "STS14-en-test" / "STS.gs.tweet-news.txt").unlink()
    with pytest.raises(InputError, match=r"STS14 file .*STS14-en-test/STS.gs.tweet-news.txt: no such file"):
        read_sts_task(root, "STS14", "test")
    (root / "SICK" / "SICK_test_annotated.txt").unlink()
    with pytest.raises(InputError, match=r"SICKRelatedness file .*SICK_test_annotated.txt: no such file"):
        read_sts_task(root, "SICKRelatedness", "test")
    (root / "STS" / "STSBenchmark" / "sts-dev.csv").write_text("")
    with pytest.raises(InputError, match=r"STSBenchmark dev file .*sts-dev.csv: file is empty"):
        read_sts_task(root, "STSBenchmark", "dev")
    with pytest.raises(InputError, match="STS12 has test data only"):
        read_sts_task(root, "STS12", "dev")


def test_data_dir_is_senteval_data_or_its_downstream(senteval_files, tmp_path):
    assert resolve_data_dir(senteval_files.root) == senteval_files.root
    assert resolve_data_dir(senteval_files.root.parent) == senteval_files.root
    with pytest.raises(InputError, match="no such directory"):
        resolve_data_dir(tmp_path / "missing")
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="is a file"):
        resolve_data_dir(tmp_path / "file")
