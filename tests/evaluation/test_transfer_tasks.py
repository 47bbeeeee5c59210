import shutil

import pytest

from cse.errors import InputError
from cse.evaluation.transfer_tasks import TREC_CLASSES, read_transfer_task


def test_binary_tasks_label_the_first_file_1(senteval_files):
    for task in ("MR", "CR", "SUBJ", "MPQA"):
        (data,) = read_transfer_task(senteval_files.root, task).values()
        written = senteval_files.transfer[task]
        assert data.sentences == written["positive"] + written["negative"]
        assert data.labels == [1] * 30 + [0] * 30


def test_binary_task_reads_latin1_and_keeps_every_line_as_senteval(tmp_path):
    (tmp_path / "MR").mkdir()
    (tmp_path / "MR" / "rt-polarity.pos").write_bytes("caf\xe9  cr\xe8me \n\nlast".encode("latin-1"))
    (tmp_path / "MR" / "rt-polarity.neg").write_bytes(b"bad\r\nworse\n")
    data = read_transfer_task(tmp_path, "MR")["all"]
    # SentEval's read().splitlines(): the blank line is a (empty) sample, the unterminated last line one too.
    assert data.sentences == ["café crème", "", "last", "bad", "worse"]
    assert data.labels == [1, 1, 1, 0, 0]


def test_binary_task_sample_per_newline_whatever_else_the_line_holds(tmp_path):
    (tmp_path / "CR").mkdir()
    # Latin-1 byte 0x85 is U+0085 (NEL), 0x0c a form feed: str.splitlines() would make 5 samples of these 2 lines.
    (tmp_path / "CR" / "custrev.pos").write_bytes(b"wait\x85 what\x0cnow\x1c!\nfine\r\n")
    (tmp_path / "CR" / "custrev.neg").write_bytes(b"bad\n")
    data = read_transfer_task(tmp_path, "CR")["all"]
    assert data.sentences == ["wait what now !", "fine", "bad"]
    assert data.labels == [1, 1, 0]


def test_sst2_splits(senteval_files):
    splits = read_transfer_task(senteval_files.root, "SST2")
    assert list(splits) == ["train", "dev", "test"]
    for split, data in splits.items():
        rows = senteval_files.transfer["SST2"][split]
        assert (data.sentences, data.labels) == ([text for text, _ in rows], [label for _, label in rows])


def test_trec_keeps_the_coarse_class_and_drops_the_fine_label(tmp_path):
    (tmp_path / "TREC").mkdir()
    (tmp_path / "TREC" / "train_5500.label").write_bytes(
        b"DESC:manner How did serfdom develop in and then leave Russia ?\nNUM:date When was Ozzy Osbourne born ?\n"
    )
    (tmp_path / "TREC" / "TREC_10.label").write_bytes(b"HUM:ind Who was \xc9mile Zola ?\n\n")
    splits = read_transfer_task(tmp_path, "TREC")
    assert splits["train"].sentences == [
        "How did serfdom develop in and then leave Russia ?",
        "When was Ozzy Osbourne born ?",
    ]
    assert splits["train"].labels == [TREC_CLASSES.index("DESC"), TREC_CLASSES.index("NUM")]
    assert (splits["test"].sentences, splits["test"].labels) == (["Who was Émile Zola ?"], [3])


def test_mrpc_skips_the_header_and_keeps_quotes(senteval_files, tmp_path):
    splits = read_transfer_task(senteval_files.root, "MRPC")
    rows = senteval_files.transfer["MRPC"]["msr_paraphrase_train.txt"]
    assert splits["train"].labels == [label for label, _, _ in rows]
    assert splits["train"].sentence1 == [a for _, a, _ in rows]
    assert splits["train"].sentence2 == [b for _, _, b in rows]
    (tmp_path / "MRPC").mkdir()
    header = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    (tmp_path / "MRPC" / "msr_paraphrase_train.txt").write_text(header + '1\t1\t2\t"He said  so\tShe said "so"\n')
    (tmp_path / "MRPC" / "msr_paraphrase_test.txt").write_text(header + "0\t3\t4\ta\tb\n")
    splits = read_transfer_task(tmp_path, "MRPC")
    assert (splits["train"].sentence1, splits["train"].sentence2) == (['"He said so'], ['She said "so"'])


@pytest.mark.parametrize(
    ("task", "relative", "content", "message"),
    [
        ("SST2", "SST/binary/sentiment-dev", "good film\t2\n", r"sentiment-dev line 1: expected 'sentence<TAB>label'"),
        ("SST2", "SST/binary/sentiment-test", "no label\n", r"sentiment-test line 1: expected"),
        ("TREC", "TREC/TREC_10.label", "OOPS:x what ?\n", r"TREC_10.label line 1: expected 'COARSE:fine question'"),
        ("MRPC", "MRPC/msr_paraphrase_test.txt", "header\n1\t2\t3\tonly one\n", r"msr_paraphrase_test.txt line 2"),
        ("MRPC", "MRPC/msr_paraphrase_test.txt", "header\n", r"msr_paraphrase_test.txt: no examples"),
    ],
)
def test_malformed_lines_name_file_and_line(senteval_files, tmp_path, task, relative, content, message):
    root = tmp_path / "copy"
    shutil.copytree(senteval_files.root, root)
    (root / relative).write_text(content)
    with pytest.raises(InputError, match=message):
        read_transfer_task(root, task)


def test_missing_files_name_the_path(tmp_path):
    with pytest.raises(InputError, match=r"CR file .*CR/custrev.pos: no such file"):
        read_transfer_task(tmp_path, "CR")
    (tmp_path / "SUBJ" / "subj.objective").mkdir(parents=True)
    with pytest.raises(InputError, match=r"SUBJ file .*subj.objective: is a directory"):
        read_transfer_task(tmp_path, "SUBJ")
    with pytest.raises(InputError, match=r"MRPC file .*msr_paraphrase_train.txt: no such file"):
        read_transfer_task(tmp_path, "MRPC")
