"""Read a text file of one sentence per line, for `cse encode` and `cse search`: row i is line i + 1."""

from pathlib import Path

from cse.data.text_file import check_text_file, iter_lines
from cse.errors import InputError


def read_sentence_lines(path: str | Path, what: str) -> list[str]:
    """Every line of a UTF-8 file as a sentence (line ends removed); a blank line is an error naming it.

    Lines end at `\\n` (or `\\r\\n`) only, as `cse.data.text_file` splits them: a form feed, U+2028 and the other
    characters `str.splitlines()` would split at stay inside their line, so row i is always line i + 1. Blank lines
    are refused rather than skipped or embedded as empty text, for the same reason.

    Args:
        path: the file.
        what: how errors name it, e.g. "input" or "corpus".
    """
    path = Path(path)
    check_text_file(path, what=what)
    lines = list(iter_lines(path))
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            raise InputError(f"{what} {path} line {line_number}: blank line; put one sentence on every line")
    if not lines:
        raise InputError(f"{what} {path}: no sentences")
    return lines
