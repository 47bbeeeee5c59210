"""Sentences shared by the model and distributed tests (imported as `sentences`: pytest puts tests/ on sys.path)."""

# (anchor, positive, hard negative) rows, as supervised SimCSE's NLI triplets.
TRIPLETS = [
    ["a man is playing", "a man plays", "a dog sleeps"],
    ["the girl", "a girl", "the boy"],
    ["a park", "the park", "a guitar"],
    ["the dog is in the park", "a dog in a park", "the man is on guitar"],
    ["a woman", "the woman", "a boy"],
    ["boys are playing", "the boys play", "girls sleep"],
]
