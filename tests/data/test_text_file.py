"""How cse splits line-oriented files: at `\\n` (or `\\r\\n`) only, never where `str.splitlines()` also would."""

import random
import re

import pytest

from cse.data import text_file
from cse.data.corpus import load_sentences
from cse.data.text_file import csv_fields, csv_line, iter_lines, split_lines
from cse.errors import InputError

# Every character `str.splitlines()` splits at besides "\n" and "\r\n": each must stay inside its line.
SPLITLINES_ONLY = ["\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\r"]


def test_splitlines_only_list_is_complete():
    splitters = {chr(code) for code in range(0x110000) if len(f"a{chr(code)}b".splitlines()) == 2}
    assert splitters == {*SPLITLINES_ONLY, "\n"}


def _reference_lines(raw: bytes) -> list[str]:
    """An independent reading: the bytes between b"\\n"s, one b"\\r" before each dropped, the BOM removed."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    pieces = raw.split(b"\n")
    if pieces[-1] == b"":
        pieces.pop()
    return [(piece[:-1] if piece.endswith(b"\r") else piece).decode("utf-8") for piece in pieces]


@pytest.mark.parametrize("seed", range(5))
def test_lines_are_what_lies_between_newlines(tmp_path, seed):
    rng = random.Random(seed)
    alphabet = ["a", "b", " ", "\t", "é", "\n", "\r\n", "\n\n", *SPLITLINES_ONLY]
    text = ("\ufeff" if seed % 2 else "") + "".join(rng.choice(alphabet) for _ in range(400))
    path = tmp_path / "lines.txt"
    path.write_bytes(text.encode("utf-8"))
    expected = _reference_lines(path.read_bytes())
    assert len(expected) == path.read_bytes().count(b"\n") + (not path.read_bytes().endswith(b"\n"))  # wc -l
    assert list(iter_lines(path)) == expected
    assert split_lines(text.removeprefix("\ufeff")) == expected


def test_windows_line_ends_read_as_unix_ones(tmp_path):
    (tmp_path / "unix.txt").write_bytes("a b\n\u2028c\fd\n".encode())
    (tmp_path / "windows.txt").write_bytes("a b\r\n\u2028c\fd\r\n".encode())
    windows, unix = (list(iter_lines(tmp_path / name)) for name in ("windows.txt", "unix.txt"))
    assert windows == unix == ["a b", "\u2028c\fd"]


def test_latin1_byte_0x85_stays_in_its_line(tmp_path):
    (tmp_path / "latin1.txt").write_bytes(b"one\x85two\nthree\n")
    assert list(iter_lines(tmp_path / "latin1.txt", "latin-1")) == ["one\x85two", "three"]


@pytest.mark.parametrize(
    ("line", "fields"),
    [
        ('a,"b, c",d', ["a", "b, c", "d"]),
        ('"say ""hi""",x', ['say "hi"', "x"]),
        ('"a\u2028b",c\r', ["a\u2028b", "c"]),  # a \r before the end is a line end
        ('"a\rb",c', ["a\rb", "c"]),  # inside quotes it is text
    ],
)
def test_csv_fields(line, fields):
    assert csv_fields(line) == fields


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('a,"b c', "a quoted field is not closed on this line"),
        ('"b" c,d', "text after the closing quote"),
        ("a\rb,c", r"a lone carriage return \(\\r\) inside an unquoted field"),
    ],
)
def test_csv_fields_refuses_a_line_it_cannot_read_whole(line, message):
    with pytest.raises(ValueError, match=message):
        csv_fields(line)


@pytest.mark.parametrize("delimiter", [",", "\t"])
def test_csv_line_is_read_back_whole(delimiter):
    fields = ["plain", "a, b", "a\tb", 'say "hi"', "a\rb", " spaced ", "", *SPLITLINES_ONLY]
    line = csv_line(fields, delimiter)
    assert line.endswith("\n") and "\n" not in line[:-1]
    assert csv_fields(line[:-1], delimiter) == fields
    assert csv_line(["a", "b"], delimiter) == f"a{delimiter}b\n"  # quotes only where needed
    with pytest.raises(ValueError, match=r"a line break \(\\n\) in 'a\\nb': a row must be one line"):
        csv_line(["a\nb"], delimiter)


def test_corpus_is_one_sentence_per_newline(tmp_path):
    lines = ["plain", "form\ffeed", "line\u2028separator", "para\u2029graph", "vertical\vtab", "next\x85line"]
    lines += ["file\x1cgroup\x1drecord\x1eunit", "lone\rreturn", "   ", "windows"]
    path = tmp_path / "corpus.txt"
    path.write_bytes(("\ufeff" + "\n".join(lines[:-1]) + "\n" + lines[-1] + "\r\n").encode("utf-8"))
    dataset = load_sentences(path, cache_dir=str(tmp_path / "cache"))
    assert dataset["text"] == [line for line in lines if line.strip()]  # the blank line dropped, nothing split


def test_corpus_of_blank_lines(tmp_path):
    (tmp_path / "blank.txt").write_bytes("\ufeff\n \r\n\u2028\n".encode())
    with pytest.raises(InputError, match="no sentences"):
        load_sentences(tmp_path / "blank.txt", cache_dir=str(tmp_path / "cache"))


def test_changed_corpus_is_read_again(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("one\ntwo\n")
    assert load_sentences(path, cache_dir=str(tmp_path / "cache"))["text"] == ["one", "two"]
    path.write_text("three\n")
    assert load_sentences(path, cache_dir=str(tmp_path / "cache"))["text"] == ["three"]


def _first_bad_line(data: bytes, what: str, path) -> str | None:
    """The error `check_text_file` must give, found line by line: the first NUL byte or invalid UTF-8."""
    for number, line in enumerate(re.findall(rb"[^\n]*\n|[^\n]+$", data), start=1):
        if b"\x00" in line:
            return f"{what} {path} line {number}: contains NUL bytes; this looks like a binary file"
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as error:
            return f"{what} {path} line {number}: not valid UTF-8 (byte {line[error.start]:#04x} at column " + (
                f"{error.start + 1})"
            )
    return None


@pytest.mark.parametrize("block", [1, 2, 3, 5, 64])
def test_check_text_file_in_blocks_finds_what_a_line_by_line_check_finds(tmp_path, monkeypatch, block):
    """Multi-byte characters cut at block boundaries pass; the first bad byte is named by its line, whatever the
    block size."""
    monkeypatch.setattr(text_file, "CHECK_BLOCK_BYTES", block)
    pieces = [b"ab", b" ", b"\n", b"\r\n", "é".encode(), "€".encode(), "😀".encode(), "\ufeff".encode()]
    bad = [b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", "😀".encode()[:3]]
    generator, outcomes = random.Random(block), set()
    path = tmp_path / "file.txt"
    for _ in range(150):
        parts = [generator.choice(pieces) for _ in range(generator.randint(1, 30))]
        if generator.random() < 0.5:
            parts.insert(generator.randint(0, len(parts)), generator.choice(bad))
        data = b"".join(parts)
        path.write_bytes(data)
        expected = _first_bad_line(data, "dev file", path)
        with path.open("rb") as handle:  # clean files pass in blocks, without the line-by-line search
            assert text_file._is_utf8_without_nul(handle) == (expected is None)
        if expected is None:
            text_file.check_text_file(path, "dev file")
        else:
            with pytest.raises(InputError) as error:
                text_file.check_text_file(path, "dev file")
            assert str(error.value) == expected
        outcomes.add(expected is None)
    assert outcomes == {True, False}


@pytest.mark.parametrize("block", [1, 4, 64])
def test_a_file_with_lone_carriage_returns_and_no_newline_is_refused_not_read_as_one_line(tmp_path, monkeypatch, block):
    """Classic Mac OS line ends: three lines by `str.splitlines()`, one by cse's rule, so every reader refuses it."""
    monkeypatch.setattr(text_file, "CHECK_BLOCK_BYTES", block)
    lines = ["a man is playing", "a dog runs", "the end"]
    mac = tmp_path / "mac.txt"
    mac.write_bytes(("\r".join(lines) + "\r").encode())
    assert mac.read_text().splitlines() == lines and list(iter_lines(mac)) == ["\r".join(lines)]
    message = f"corpus {mac}: its lines end in a lone carriage return"
    with pytest.raises(InputError, match=re.escape(message)):
        text_file.check_text_file(mac, "corpus")
    with pytest.raises(InputError, match=re.escape(message)):
        load_sentences(mac, cache_dir=str(tmp_path / "cache"))
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.arrow"))

    mixed = tmp_path / "mixed.txt"  # with a newline anywhere, a lone carriage return is text of its line, as before
    mixed.write_bytes(b"a\rb\n" + b"x" * 100 + b"\rc\n")
    text_file.check_text_file(mixed, "corpus")
    assert load_sentences(mixed, cache_dir=str(tmp_path / "cache"))["text"] == ["a\rb", "x" * 100 + "\rc"]
