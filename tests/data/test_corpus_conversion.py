"""The `.txt` corpus converted block by block to a cached Arrow file: the same sentences as a line-by-line reading,
the same errors as `check_text_file`, nothing left behind by a failed conversion, and no second reading."""

import random

import pyarrow as pa
import pytest
from transformers import AutoTokenizer

import cse.data.corpus as corpus
import cse.data.training_data as training_data
from cse.data.corpus import load_sentences
from cse.data.text_file import check_text_file, iter_lines
from cse.data.training_data import load_examples, tokenize_examples
from cse.errors import InputError

ALPHABET = ["a", "b", " ", "\t", "é", "日本", "😀", "\n", "\r\n", "\n\n", " \n", "\r", "\u2028", "\f"]


def _random_corpus(seed: int, length: int = 3000) -> str:
    rng = random.Random(seed)
    text = ("\ufeff" if seed % 2 else "") + "".join(rng.choice(ALPHABET) for _ in range(length))
    return text + ("" if seed % 3 else "\n")  # some end without a line end


@pytest.mark.parametrize("block_bytes", [1, 7, 64, 2**20])
@pytest.mark.parametrize("seed", range(4))
def test_blocks_give_the_non_blank_lines_of_a_line_by_line_reading(tmp_path, monkeypatch, block_bytes, seed):
    monkeypatch.setattr(corpus, "BLOCK_BYTES", block_bytes)  # 1 and 7 bytes split multi-byte characters and \r\n
    path = tmp_path / "corpus.txt"
    path.write_bytes(_random_corpus(seed).encode("utf-8"))
    expected = [line for line in iter_lines(path) if line.strip()]
    assert load_sentences(path, cache_dir=str(tmp_path / "cache"))["text"] == expected


@pytest.mark.parametrize(
    "content",
    [
        b"one\ntwo\nthr\x00ee\nfour\n",  # NUL on line 3
        b"one\ntwo\ncaf\xe9 au lait\n",  # latin-1 byte on line 3, column 4
        b"\n" * 40 + b"x\xff\n",  # after 40 lines, so in a later block
        "é\n".encode() * 10 + b"\xc3\n",  # a truncated 2-byte character
    ],
    ids=["nul", "latin-1", "late", "truncated"],
)
@pytest.mark.parametrize("block_bytes", [5, 2**20])
def test_bad_bytes_are_named_as_check_text_file_names_them(tmp_path, monkeypatch, content, block_bytes):
    monkeypatch.setattr(corpus, "BLOCK_BYTES", block_bytes)
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    with pytest.raises(InputError) as expected:
        check_text_file(path, what="corpus")
    cache = tmp_path / "cache"
    with pytest.raises(InputError) as raised:
        load_sentences(path, cache_dir=str(cache))
    assert str(raised.value) == str(expected.value)
    assert [file.name for file in cache.rglob("*") if file.is_file()] == [], "no cache and no temporary file"


def test_a_converted_corpus_is_opened_without_reading_the_text_again(tmp_path, monkeypatch):
    path = tmp_path / "corpus.txt"
    path.write_text("one\n\ntwo\n")
    first = load_sentences(path, cache_dir=str(tmp_path / "cache"))

    def no_second_reading(*args) -> None:
        raise AssertionError("the corpus was read again")

    monkeypatch.setattr(corpus, "_convert", no_second_reading)
    assert load_sentences(path, cache_dir=str(tmp_path / "cache"))["text"] == first["text"] == ["one", "two"]


def test_a_corpus_of_blank_lines_leaves_no_cache(tmp_path):
    path = tmp_path / "blank.txt"
    path.write_text("\n \n\t\n")
    with pytest.raises(InputError, match=r"corpus .*blank.txt: no sentences \(only blank lines\)"):
        load_sentences(path, cache_dir=str(tmp_path / "cache"))
    assert [file for file in (tmp_path / "cache").rglob("*") if file.is_file()] == []


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda path: None, "no such file"),
        (lambda path: path.mkdir(), "is a directory; expected a file"),
        (lambda path: path.write_bytes(b""), "file is empty"),
    ],
    ids=["missing", "directory", "empty"],
)
def test_missing_directory_and_empty_are_one_line(tmp_path, make, message):
    path = tmp_path / "corpus.txt"
    make(path)
    with pytest.raises(InputError) as raised:
        load_sentences(path, cache_dir=str(tmp_path / "cache"))
    assert str(raised.value) == f"corpus {path}: {message}"


def test_record_batches_hold_record_batch_rows_lines(tmp_path, monkeypatch):
    """Few, large record batches: opening the file maps the pages around each batch header, not the whole file."""
    monkeypatch.setattr(corpus, "RECORD_BATCH_ROWS", 3)
    path = tmp_path / "corpus.txt"
    path.write_text("".join(f"sentence {index}\n" for index in range(7)))
    dataset = load_sentences(path, cache_dir=str(tmp_path / "cache"))
    with pa.memory_map(dataset.cache_files[0]["filename"]) as source:
        batches = list(pa.ipc.open_stream(source))
    assert [batch.num_rows for batch in batches] == [3, 3, 1]
    assert [text for batch in batches for text in batch.column("text").to_pylist()] == dataset["text"]


def test_tokenized_rows_are_cached_in_record_batches_of_record_batch_rows(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(training_data, "TOKENIZED_RECORD_BATCH_ROWS", 3)
    path = tmp_path / "corpus.txt"
    path.write_text("".join(f"sentence {index}\n" for index in range(7)))
    examples = load_examples(str(path), cache_dir=str(tmp_path / "cache"))
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenized = tokenize_examples(examples, tokenizer, 32, cache_dir=str(tmp_path / "cache"))
    with pa.memory_map(tokenized.cache_files[0]["filename"]) as source:
        batches = list(pa.ipc.open_stream(source))
    assert [batch.num_rows for batch in batches] == [3, 3, 1]
    expected = [[tokenizer(f"sentence {index}")["input_ids"]] for index in range(7)]  # one view per row
    assert tokenized["input_ids"] == expected
