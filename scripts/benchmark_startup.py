"""Time from `cse fit` to the end of its first training step, and its peak RSS, by `data.tokenize` mode and corpus size.

A wiki1m-shaped corpus of N lines is written to the work directory (lines of a sentence file repeated, each with its
line number appended so that all lines differ). Each mode runs cold (an empty cache directory) then warm (the cache of
the cold run), one after the other in this process, so that their ratio is measured under the same machine load; the
load average is printed with each run. The training process exits right after its first step (`FirstStepClock`).

    python scripts/benchmark_startup.py --lines 1000000 --model PATH/TO/all-MiniLM-L6-v2
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from lightning.pytorch.callbacks import Callback

SENTENCES = Path("/work/shared/data/wiki_sentences_11914.txt")


class FirstStepClock(Callback):
    """Writes the time at the end of the first training step to `path`, then ends the process (no teardown)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        Path(self.path).write_text(f"{time.time()}\n")
        os._exit(0)


def write_corpus(lines: int, path: Path, source: Path = SENTENCES) -> None:
    """`lines` lines: the non-blank lines of `source` in turn, each followed by its line number."""
    if path.exists() and sum(1 for _ in path.open("rb")) == lines:
        return
    sentences = [line.strip() for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    with path.open("w", encoding="utf-8") as handle:
        for index in range(lines):
            handle.write(f"{sentences[index % len(sentences)]} {index}\n")


def time_first_step(corpus: Path, model: str, mode: str, cache: Path, work: Path) -> dict:
    """Seconds from starting `cse fit` to the end of step 1, and the peak RSS (MB) of its main process."""
    clock, usage = work / "first_step.txt", work / "time.txt"
    clock.unlink(missing_ok=True)
    command = [
        *("/usr/bin/time", "-f", "%M", "-o", str(usage)),
        *(sys.executable, "-m", "cse", "fit", "--config", "quickstart", "--model.model_name_or_path", model),
        *("--data.train_file", str(corpus), "--data.dev_file", "null", "--data.cache_dir", str(cache)),
        *("--data.tokenize", mode, "--data.num_workers", "1", "--trainer.max_steps", "1"),
        *("--trainer.num_sanity_val_steps", "0", "--trainer.enable_progress_bar", "false"),
        *("--trainer.logger.init_args.save_dir", str(work / "runs")),
        *("--trainer.callbacks+=benchmark_startup.FirstStepClock", f"--trainer.callbacks.path={clock}"),
    ]
    python_path = os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": python_path, "HF_HUB_OFFLINE": "1"}
    load_before = os.getloadavg()[0]
    start = time.time()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=work)
    if not clock.exists():
        raise SystemExit(f"{mode}: no first step (exit {result.returncode}):\n{result.stderr[-3000:]}")
    seconds = float(clock.read_text()) - start
    rss = int(usage.read_text().split()[-1]) / 1024
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(rss), "load": [load_before, os.getloadavg()[0]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--model", required=True, help="all-MiniLM-L6-v2 directory")
    parser.add_argument("--modes", nargs="+", default=["ahead", "in_workers"])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/cse-benchmark-startup"))
    parser.add_argument("--output", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for lines in args.lines:
        corpus = args.work_dir / f"corpus_{lines}.txt"
        write_corpus(lines, corpus)
        for mode in args.modes:
            cache = args.work_dir / f"cache_{lines}_{mode}"
            shutil.rmtree(cache, ignore_errors=True)
            for state in ("cold", "warm"):
                row = {"lines": lines, "mode": mode, "cache": state}
                row |= time_first_step(corpus, args.model, mode, cache, args.work_dir)
                print(json.dumps(row), flush=True)
                results.append(row)
            shutil.rmtree(cache, ignore_errors=True)
    if args.output:
        args.output.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
