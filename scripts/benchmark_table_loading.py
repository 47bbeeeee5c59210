"""Seconds and peak RSS of `load_examples` on a pairs csv of N rows, cold (empty cache) then warm (its cache).

The csv (`sent0,sent1`) is written to the work directory from the premise/entailment pairs of SimCSE's NLI file,
repeated, each text followed by its row number so that all rows differ. Each measurement runs in its own Python
process, so its peak RSS is its own (imports included; `rss_before_gb` is the RSS just before the call; after it,
RSS is split into the process's own memory and the pages of mapped files such as the memory-mapped Arrow cache). With
several `--code` checkouts (e.g. main and a branch) they take turns, cold then warm, under the same machine load;
the 1-minute load average is printed with each run.

    python scripts/benchmark_table_loading.py --rows 1000000 --code /work/main .
"""

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

NLI = Path("/work/shared/data/nli_snli_for_simcse.csv")
KINDS = ("RssAnon", "RssFile")  # resident memory of the process's own vs of mapped files, from /proc/self/status


def write_pairs(rows: int, path: Path, source: Path = NLI) -> None:
    """`rows` rows `sent0,sent1`: the (sent0, sent1) pairs of `source` in turn, each text followed by its row number."""
    if path.exists() and sum(1 for _ in path.open("rb")) == rows + 1:
        return
    with source.open(encoding="utf-8", newline="") as handle:
        pairs = [(row["sent0"], row["sent1"]) for row in csv.DictReader(handle)]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["sent0", "sent1"])
        for index in range(rows):
            first, second = pairs[index % len(pairs)]
            writer.writerow([f"{first} {index}", f"{second} {index}"])


def measure(train_file: str, cache: str) -> dict:
    """One `load_examples` call in this process: rows, seconds, RSS before and at peak (GB)."""
    from cse.data.training_data import load_examples

    page = os.sysconf("SC_PAGE_SIZE")
    rss_before = int(Path("/proc/self/statm").read_text().split()[1]) * page
    start = time.perf_counter()
    examples = load_examples(train_file, cache_dir=cache)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return {
        "rows": len(examples.dataset),
        "seconds": round(seconds, 2),
        "rss_before_gb": round(rss_before / 1e9, 3),
        "peak_rss_gb": round(peak / 1e9, 3),
        # after the call: process memory vs pages of memory-mapped files (the Arrow cache; reclaimable, shared)
        **{f"{key.lower()}_after_gb": round(int(status[key].split()[0]) * 1024 / 1e9, 3) for key in KINDS},
    }


def run_measurement(code: Path, train_file: Path, cache: Path) -> dict:
    """`measure` in a fresh process that imports `cse` from the checkout `code`."""
    env = {**os.environ, "PYTHONPATH": str(code.resolve()), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    command = [sys.executable, __file__, "--measure", str(train_file), str(cache)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd="/tmp")
    if result.returncode:
        raise SystemExit(f"{code}: exit {result.returncode}:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    if sys.argv[1:2] == ["--measure"]:
        print(json.dumps(measure(*sys.argv[2:4])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--code", type=Path, nargs="+", default=[Path(__file__).resolve().parents[1]])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/cse-benchmark-tables"))
    args = parser.parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    train_file = args.work_dir / f"pairs_{args.rows}.csv"
    write_pairs(args.rows, train_file)
    for index, code in enumerate(args.code):
        cache = args.work_dir / f"cache_{index}"
        shutil.rmtree(cache, ignore_errors=True)
        for state in ("cold", "warm"):
            load = os.getloadavg()[0]
            row = {"code": str(code), "cache": state, **run_measurement(code, train_file, cache)}
            print(json.dumps(row | {"load": [round(load, 2), round(os.getloadavg()[0], 2)]}), flush=True)
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
