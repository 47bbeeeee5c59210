"""`scripts/benchmark_startup.py`'s corpus: N distinct lines in the shape of the source sentences."""


def test_corpus_has_n_distinct_lines_of_the_source_sentences(tmp_path, script_module):
    write_corpus = script_module("benchmark_startup").write_corpus
    source = tmp_path / "sentences.txt"
    source.write_text("first sentence\n\n  second one \nthird\n")
    corpus = tmp_path / "corpus.txt"
    write_corpus(7, corpus, source)
    lines = corpus.read_text().splitlines()
    sentences = ["first sentence", "second one", "third"]
    assert lines == [f"{sentences[index % 3]} {index}" for index in range(7)]
    assert len(set(lines)) == 7
