"""Text ids: the normalized text's 64-bit BLAKE2b digest, per row of a dataset, cached."""

import hashlib

import numpy as np
from datasets import Dataset

from cse.data.text_identity import normalize_text, row_text_ids, text_id


def test_normalize_text():
    assert normalize_text("  A  Man\u00a0plays.\t") == "a man plays."
    assert normalize_text("ﬁne") == "fine"  # NFKC unfolds the ligature


def test_text_id_is_the_digest_of_the_normalized_text():
    expected = int.from_bytes(hashlib.blake2b(b"a man plays.", digest_size=8).digest(), "little", signed=True)
    assert text_id(" A MAN  plays.") == text_id("a man plays.") == expected
    assert text_id("a man plays") != expected


def test_row_text_ids_per_column_and_cached(tmp_path):
    rows = {"sent0": ["A b", "c", "x"], "sent1": ["d", "a  B", "y"], "score": [1.0, 2.0, 3.0]}
    dataset = Dataset.from_dict(rows)
    ids = row_text_ids(dataset, ["sent0", "sent1"], tmp_path, fingerprint="f1")
    assert ids.dtype == np.int64 and ids.shape == (3, 2)
    assert ids.tolist() == [[text_id(a), text_id(b)] for a, b in zip(rows["sent0"], rows["sent1"], strict=True)]
    assert ids[0, 0] == ids[1, 1]
    cached = list(tmp_path.glob("*.arrow"))
    assert len(cached) == 1
    changed = Dataset.from_dict({**rows, "sent0": ["other", "c", "x"]})  # same fingerprint: read from the cache
    assert row_text_ids(changed, ["sent0", "sent1"], tmp_path, fingerprint="f1").tolist() == ids.tolist()
    assert row_text_ids(changed, ["sent0", "sent1"], tmp_path, fingerprint="f2")[0, 0] == text_id("other")
