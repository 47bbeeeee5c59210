"""Sentences shared by the model, data and distributed tests, and the rows the data module makes of them (imported as
`sentences`: pytest puts tests/ on sys.path)."""

# (anchor, positive, hard negative) rows, as supervised SimCSE's NLI triplets.
TRIPLETS = [
    ["a man is playing", "a man plays", "a dog sleeps"],
    ["the girl", "a girl", "the boy"],
    ["a park", "the park", "a guitar"],
    ["the dog is in the park", "a dog in a park", "the man is on guitar"],
    ["a woman", "the woman", "a boy"],
    ["boys are playing", "the boys play", "girls sleep"],
]

# One line each, holding every character `str.splitlines()` splits at besides "\n": each must stay one record.
LINES_WITH_SEPARATORS = [
    "a man\u2028is playing",
    "the dog\u2029is in the park",
    "a girl\fis here",
    "a boy\vis on the dog",
    "the woman\x85is playing",
    "a man\x1cin\x1dthe\x1epark",
    "a dog\ris playing",
    "the girl is playing a guitar",
]


def tokenized_rows(tokenizer, texts: list[list[str]]) -> list[dict[str, list[list[int]]]]:
    """One row per example as the data module stores it: for each tokenizer output, one token list per text."""
    rows = []
    for views in texts:
        encoded = [tokenizer(text) for text in views]
        rows.append({key: [enc[key] for enc in encoded] for key in encoded[0]})
    return rows
