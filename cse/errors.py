"""The one exception type the CLI turns into a one-line message instead of a traceback."""


class InputError(Exception):
    """Bad user input: a file, line, key or model path that cannot be used.

    The message is one line naming what is wrong and where (file and line, config key, model path).
    """


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (its type name when empty), for one-line `InputError`s."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def one_line(error: BaseException, limit: int = 400) -> str:
    """An exception's message on one line: its lines joined, whitespace collapsed, cut at `limit` characters."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
