"""Read SentEval's transfer tasks (MR, CR, SUBJ, MPQA, SST2, TREC, MRPC) from its data layout, as SentEval does.

File layouts and parsing follow `senteval/{binary,sst,trec,mrpc}.py` (Conneau & Kiela, 2018):
- MR, CR, SUBJ, MPQA: one sentence per line in two files, one per class (latin-1). Every line is a sample, a blank
  one too, as SentEval makes them, so counts match SentEval's; lines end at `\n` only (see `read_lines`).
- SST2 (`SST/binary/sentiment-{train,dev,test}`): `sentence<TAB>label` per line, labels 0/1 (UTF-8).
- TREC (`TREC/train_5500.label`, `TREC/TREC_10.label`): `COARSE:fine question` per line; the six coarse classes
  are the labels (latin-1).
- MRPC (`MRPC/msr_paraphrase_{train,test}.txt`): a header, then `Quality<TAB>#1 ID<TAB>#2 ID<TAB>#1 String<TAB>#2
  String` (UTF-8).
Sentences are whitespace-normalised (`' '.join(text.split())`) as SentEval's tokenisation and batcher make them.
"""

from dataclasses import dataclass
from pathlib import Path

from cse.errors import InputError
from cse.evaluation.data_dir import read_lines, task_file

# Class 1 file, class 0 file (SentEval's `pos, neg`; SUBJ passes objective first).
BINARY_TASKS: dict[str, tuple[str, str]] = {
    "MR": ("MR/rt-polarity.pos", "MR/rt-polarity.neg"),
    "CR": ("CR/custrev.pos", "CR/custrev.neg"),
    "SUBJ": ("SUBJ/subj.objective", "SUBJ/subj.subjective"),
    "MPQA": ("MPQA/mpqa.pos", "MPQA/mpqa.neg"),
}
SST2_FILES = {
    "train": "SST/binary/sentiment-train",
    "dev": "SST/binary/sentiment-dev",
    "test": "SST/binary/sentiment-test",
}
TREC_FILES = {"train": "TREC/train_5500.label", "test": "TREC/TREC_10.label"}
TREC_CLASSES = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")  # SentEval's tgt2idx order
MRPC_FILES = {"train": "MRPC/msr_paraphrase_train.txt", "test": "MRPC/msr_paraphrase_test.txt"}
TRANSFER_TASKS: tuple[str, ...] = ("MR", "CR", "SUBJ", "MPQA", "SST2", "TREC", "MRPC")  # the paper's column order


@dataclass(frozen=True)
class LabelledSentences:
    """Parallel lists: `labels[i]` is the class id of `sentences[i]`."""

    sentences: list[str]
    labels: list[int]


@dataclass(frozen=True)
class LabelledPairs:
    """Parallel lists: `labels[i]` is the class id of the pair (`sentence1[i]`, `sentence2[i]`)."""

    sentence1: list[str]
    sentence2: list[str]
    labels: list[int]


def read_transfer_task(data_dir: Path, task: str) -> dict[str, LabelledSentences | LabelledPairs]:
    """One of `TRANSFER_TASKS` by split: `all` for MR/CR/SUBJ/MPQA, `train`/`dev`/`test` for SST2, `train`/`test`
    for TREC and MRPC."""
    if task in BINARY_TASKS:
        return {"all": read_binary_task(data_dir, task)}
    readers = {"SST2": read_sst2, "TREC": read_trec, "MRPC": read_mrpc}
    if task not in readers:
        raise ValueError(f"unknown transfer task {task!r}")
    return readers[task](data_dir)


def read_binary_task(data_dir: Path, task: str) -> LabelledSentences:
    """MR, CR, SUBJ or MPQA: the class-1 file's lines, then the class-0 file's."""
    sentences, labels = [], []
    for label, relative in zip((1, 0), BINARY_TASKS[task], strict=True):
        lines = read_lines(task_file(data_dir, relative, task), "latin-1", task)
        sentences += [_normalise(line) for line in lines]
        labels += [label] * len(lines)
    return LabelledSentences(sentences, labels)


def read_sst2(data_dir: Path) -> dict[str, LabelledSentences]:
    """SST2's train, dev and test splits."""
    return {split: _read_sst2_file(task_file(data_dir, relative, "SST2")) for split, relative in SST2_FILES.items()}


def read_trec(data_dir: Path) -> dict[str, LabelledSentences]:
    """TREC's train and test splits, labelled by coarse class (SentEval drops the fine label)."""
    return {split: _read_trec_file(task_file(data_dir, relative, "TREC")) for split, relative in TREC_FILES.items()}


def read_mrpc(data_dir: Path) -> dict[str, LabelledPairs]:
    """MRPC's train and test splits; label 1 means paraphrase."""
    return {split: _read_mrpc_file(task_file(data_dir, relative, "MRPC")) for split, relative in MRPC_FILES.items()}


def _read_sst2_file(path: Path) -> LabelledSentences:
    sentences, labels = [], []
    for line_number, line in _numbered_lines(path, "utf-8", "SST2"):
        fields = line.strip().split("\t")
        if len(fields) < 2 or fields[1] not in ("0", "1"):
            raise InputError(f"SST2 file {path} line {line_number}: expected 'sentence<TAB>label' with label 0 or 1")
        sentences.append(_normalise(fields[0]))
        labels.append(int(fields[1]))
    return _non_empty(LabelledSentences(sentences, labels), path, "SST2")


def _read_trec_file(path: Path) -> LabelledSentences:
    sentences, labels = [], []
    for line_number, line in _numbered_lines(path, "latin-1", "TREC"):
        coarse, _, rest = line.strip().partition(":")
        fine_and_question = rest.split(" ", 1)
        if coarse not in TREC_CLASSES or len(fine_and_question) < 2:
            raise InputError(
                f"TREC file {path} line {line_number}: expected 'COARSE:fine question' with COARSE one of "
                f"{', '.join(TREC_CLASSES)}"
            )
        sentences.append(_normalise(fine_and_question[1]))
        labels.append(TREC_CLASSES.index(coarse))
    return _non_empty(LabelledSentences(sentences, labels), path, "TREC")


def _read_mrpc_file(path: Path) -> LabelledPairs:
    sentence1, sentence2, labels = [], [], []
    for line_number, line in _numbered_lines(path, "utf-8", "MRPC"):
        if line_number == 1:  # header: Quality, #1 ID, #2 ID, #1 String, #2 String
            continue
        fields = line.strip().split("\t")
        if len(fields) < 5 or fields[0] not in ("0", "1"):
            raise InputError(
                f"MRPC file {path} line {line_number}: expected 'Quality<TAB>#1 ID<TAB>#2 ID<TAB>#1 String<TAB>"
                "#2 String' with Quality 0 or 1"
            )
        labels.append(int(fields[0]))
        sentence1.append(_normalise(fields[3]))
        sentence2.append(_normalise(fields[4]))
    return _non_empty(LabelledPairs(sentence1, sentence2, labels), path, "MRPC")


def _numbered_lines(path: Path, encoding: str, task: str) -> list[tuple[int, str]]:
    """(line number, line) of every line that is not blank (SentEval would crash on a blank one)."""
    lines = enumerate(read_lines(path, encoding, task), start=1)
    return [(number, line) for number, line in lines if line.strip()]


def _non_empty(data: LabelledSentences | LabelledPairs, path: Path, task: str) -> LabelledSentences | LabelledPairs:
    if not data.labels:
        raise InputError(f"{task} file {path}: no examples")
    return data


def _normalise(text: str) -> str:
    return " ".join(text.split())
