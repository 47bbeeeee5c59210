"""Read a `.txt` corpus, one sentence per line (SimCSE's wiki1m format), as a memory-mapped `Dataset` column `text`.

The file is converted once, in blocks of whole lines (split, checked and written by C loops, not a Python step per
line: about 900,000 lines/s on one quiet core, 9 times `Dataset.from_generator` line by line), to an Arrow file in
the derived data cache, named after the file's path, size and modification time; the next run opens that file
without reading the text again. Memory stays one block, whatever the corpus size.
"""

from collections.abc import Iterator
from pathlib import Path

from datasets import Dataset, Features, Value
from datasets.arrow_writer import ArrowWriter
from datasets.fingerprint import Hasher

from cse.data.derived_cache import derived_data_cache, source_identity
from cse.data.text_file import carriage_return_lines_error, check_non_empty_file, first_bad_line_error
from cse.errors import InputError
from cse.whole_file import written_whole

BLOCK_BYTES = 16 * 2**20
# Rows per Arrow record batch. Opening the file reads every batch's header, and each read maps the pages around it
# (the kernel's fault-around): with datasets' 1,000 rows per batch that maps 0.64 GB of a 10M-line corpus at once.
RECORD_BATCH_ROWS = 100_000
FEATURES = Features({"text": Value("string")})
BYTE_ORDER_MARK = "\ufeff"
SPLIT_RULE = "non-blank lines split at \\n"  # part of the cache key: a change of the rule reads corpora again


def load_sentences(path: str | Path, cache_dir: str | None = None) -> Dataset:
    """Sentences as a `Dataset` with one column `text`, blank lines dropped, in file order.

    Lines are split as `cse.data.text_file` says (at `\\n` only, so a sentence holding a form feed or U+2028 stays
    one sentence; `\\r\\n` ends a line too; a byte-order mark is dropped), not by `datasets`' text loader, which
    also splits at a lone `\\r`.

    Args:
        path: a local UTF-8 `.txt` file.
        cache_dir: where the Arrow copy is kept (`cse.data.derived_cache`).

    Raises:
        InputError: a missing, empty, binary or non-UTF-8 file (naming the line), or one with only blank lines.
    """
    path = Path(path).expanduser()
    check_non_empty_file(path, what="corpus")  # its bytes are checked as it is converted
    cache_root = derived_data_cache(cache_dir)
    # Named after path, size and modification time: a changed file is read again, not taken from the cache.
    cached = cache_root / f"{Hasher.hash((source_identity(str(path)), SPLIT_RULE))}-sentences.arrow"
    if not cached.exists():
        cache_root.mkdir(parents=True, exist_ok=True)
        _convert(path, cached)
    return Dataset.from_file(str(cached))


def _convert(path: Path, destination: Path) -> None:
    """Write the non-blank lines of `path` to the Arrow file `destination`, through a temporary file that is renamed
    only once the whole corpus was read without error."""
    sentences = 0
    with written_whole(destination) as temporary:
        with ArrowWriter(features=FEATURES, path=str(temporary), writer_batch_size=RECORD_BATCH_ROWS) as writer:
            for lines in _non_blank_line_blocks(path):
                writer.write_batch({"text": lines})
                sentences += len(lines)
            writer.finalize()
        if not sentences:
            raise InputError(f"corpus {path}: no sentences (only blank lines)")


def _non_blank_line_blocks(path: Path) -> Iterator[list[str]]:
    """The non-blank lines of `path`, about `BLOCK_BYTES` at a time (whole lines), each checked to be UTF-8 text."""
    first, rest = True, b""
    with path.open("rb") as file:
        while chunk := file.read(BLOCK_BYTES):
            data = rest + chunk
            end = data.rfind(b"\n") + 1
            block, rest = data[:end], data[end:]
            if block:
                yield _block_lines(path, block, first)
                first = False
    if rest:  # a last line without a line end
        if first and b"\r" in rest:  # no \n in the whole file
            raise carriage_return_lines_error(path, what="corpus")
        yield _block_lines(path, rest, first)


def _block_lines(path: Path, block: bytes, first: bool) -> list[str]:
    """The non-blank lines of `block` (whole lines of the file; `first`: its start), `\r\n` ends stripped."""
    if b"\x00" in block:
        raise first_bad_line_error(path, what="corpus")
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        raise first_bad_line_error(path, what="corpus") from None
    if first:
        text = text.removeprefix(BYTE_ORDER_MARK)
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines if line.strip()]
