"""`scripts/benchmark_table_loading.py`'s pairs csv: the source's (sent0, sent1) pairs in turn, numbered."""

import csv


def test_pairs_csv_repeats_the_source_pairs_with_their_row_number(tmp_path, script_module):
    write_pairs = script_module("benchmark_table_loading").write_pairs
    source = tmp_path / "nli.csv"
    source.write_text('sent0,sent1,hard_neg\n"A man, tall",He is tall,No one\nTwo dogs,Dogs,Cats\n')
    pairs = tmp_path / "pairs.csv"
    write_pairs(5, pairs, source)
    with pairs.open(newline="") as handle:
        rows = list(csv.reader(handle))
    expected = [("A man, tall", "He is tall"), ("Two dogs", "Dogs")]
    assert rows == [["sent0", "sent1"]] + [[f"{a} {i}", f"{b} {i}"] for i, (a, b) in enumerate(expected * 3)][:5]
