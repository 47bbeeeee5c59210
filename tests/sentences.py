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


def tokenized_rows(tokenizer, texts: list[list[str]]) -> list[dict[str, list[list[int]]]]:
    """One row per example as the data module stores it: for each tokenizer output, one token list per text."""
    rows = []
    for views in texts:
        encoded = [tokenizer(text) for text in views]
        rows.append({key: [enc[key] for enc in encoded] for key in encoded[0]})
    return rows
