"""`sentence_as_tested` against a transcription of the reference's test (kongds/Prompt-BERT 690ba6e: SentEval's
sts.py:42 split, evaluation.py:192 join, evaluation.py:201 the appended period)."""

import pytest

from cse.models.prompt_template import sentence_as_tested


def _reference(line: str) -> str:
    """The reference's code, transcribed: SentEval hands the batcher `line.split()`, which joins and punctuates it."""
    s = " ".join(line.split())  # SentEval/senteval/sts.py:42 `s.split()`; evaluation.py:192 `' '.join(s)`
    if len(s) > 0 and s[-1] not in ".?\"'":  # evaluation.py:201
        s += "."
    return s


SENTENCES = [
    "",
    " ",
    "\t\n ",
    "a cat",
    "a cat.",
    "a cat .",
    "a cat ",
    "  a   cat\tsat \n",
    "is it a cat?",
    "is it a cat ?",
    "is it a cat?!",
    "wow!",
    "a, b,",
    'he said "hi"',
    "he said 'hi'",
    "it's",
    "“curly”",
    "‘curly’",
    "...",
    ".",
    "?",
    '"',
    "'",
    "café au lait",
    "naïve?",
    "日本語の文です。",
    "¿qué?",
    "emoji 🙂",
    "a\u00a0cat\u00a0",
    "tab\tinside.",
    "(parenthesis)",
    "x:",
]


@pytest.mark.parametrize("sentence", SENTENCES)
def test_sentence_as_tested_is_the_reference_s(sentence):
    assert sentence_as_tested(sentence) == _reference(sentence)


def test_a_few_by_hand():
    assert sentence_as_tested("a cat") == "a cat."
    assert sentence_as_tested("  a  cat \n") == "a cat."
    assert sentence_as_tested("is it?") == "is it?"
    assert sentence_as_tested('he said "hi"') == 'he said "hi"'
    assert sentence_as_tested("wow!") == "wow!."
    assert sentence_as_tested("日本語。") == "日本語。."
    assert sentence_as_tested(" \t") == ""
