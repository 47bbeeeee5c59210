"""Time the duplicate-free sampler at scale: one epoch of batches over N NLI-like rows, and text ids of real sentences.

    python scripts/benchmark_no_duplicates.py --rows 10000000 --batch-size 8192
    python scripts/benchmark_no_duplicates.py --rows 1000000 --row-by-row   # also the Python loop, side by side

Rows are (premise, hypothesis, negative) ids with each premise in three rows, as SNLI/MNLI-derived NLI data; an epoch
is what `NoDuplicatesSampler` computes at each epoch start. `--sentences FILE` also times `text_id` (normalize and
hash) over FILE's lines, the one-time cost per text that `row_text_ids` caches.
"""

import argparse
import resource
import time
from collections import deque
from pathlib import Path

import numpy as np
import torch

from cse.data.no_duplicates_sampler import duplicate_free_batches
from cse.data.text_identity import text_id


def nli_like_ids(rows: int) -> np.ndarray:
    """(rows, 3) ids: premise i // 3, then a distinct hypothesis and negative per row."""
    ids = np.empty((rows, 3), dtype=np.int64)
    ids[:, 0] = np.arange(rows) // 3
    ids[:, 1] = np.arange(rows) + rows
    ids[:, 2] = np.arange(rows) + 2 * rows
    return ids


def row_by_row(text_ids: list[tuple[int, ...]], order: list[int], size: int) -> int:
    """The same batches with a Python step per row (the rule as sentence-transformers writes it); their count."""
    pending, batches = deque(order), 0
    while len(pending) >= size:
        batch, seen, waiting = 0, set(), []
        while pending and batch < size:
            index = pending.popleft()
            if seen.isdisjoint(text_ids[index]):
                batch += 1
                seen.update(text_ids[index])
            else:
                waiting.append(index)
        pending.extendleft(reversed(waiting))
        if batch < size:
            break
        batches += 1
    return batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--batch-size", type=int, default=8192, help="rows per global batch (all processes)")
    parser.add_argument("--row-by-row", action="store_true", help="also time the Python loop on the same rows")
    parser.add_argument("--sentences", type=Path, help="a text file whose lines are hashed to time text_id")
    args = parser.parse_args()

    ids = nli_like_ids(args.rows)
    order = torch.randperm(args.rows, generator=torch.Generator().manual_seed(0)).numpy()
    started = time.perf_counter()
    batches = duplicate_free_batches(ids, order, args.batch_size)
    seconds = time.perf_counter() - started
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"no_duplicates epoch: {args.rows:,} rows, batch {args.batch_size:,}: {len(batches):,} batches in "
        f"{seconds:.2f} s ({1e3 * seconds / max(len(batches), 1):.2f} ms per batch); peak RSS {peak_gib:.2f} GiB"
    )
    if args.row_by_row:
        rows, shuffled = [tuple(row) for row in ids.tolist()], order.tolist()
        started = time.perf_counter()
        count = row_by_row(rows, shuffled, args.batch_size)
        loop_seconds = time.perf_counter() - started
        assert count == len(batches), "the two ways must make the same batches"
        print(f"row by row in Python: {loop_seconds:.2f} s, {loop_seconds / seconds:.1f}x the numpy sampler")
    if args.sentences:
        lines = args.sentences.read_text(encoding="utf-8").splitlines()
        started = time.perf_counter()
        for line in lines:
            text_id(line)
        per_text = (time.perf_counter() - started) / len(lines)
        print(
            f"text_id: {1e6 * per_text:.2f} µs per text over {len(lines):,} lines of {args.sentences.name}; "
            f"10M rows x 3 texts: {30e6 * per_text:.0f} s on one core (once, then cached)"
        )


if __name__ == "__main__":
    main()
