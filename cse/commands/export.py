"""`cse export CHECKPOINT OUT_DIR`: a training checkpoint as a model directory with its model card.

`cse fit` ends with the same export of its best checkpoint (`cse.export.checkpoint`).
"""

import argparse

from cse.export.checkpoint import export_checkpoint


def build_parser() -> argparse.ArgumentParser:
    """`cse export CHECKPOINT OUT_DIR [--overwrite] [--eval-json FILE]`."""
    parser = argparse.ArgumentParser(
        prog="cse export",
        description="Write a checkpoint as a model directory that transformers, sentence-transformers and cse load.",
    )
    parser.add_argument("checkpoint", help="a cse .ckpt file, or a run directory such as runs/quickstart/version_0")
    parser.add_argument("out_dir", help="the model directory to write")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUT_DIR if it is a previous cse export (nothing else is ever replaced)",
    )
    parser.add_argument("--eval-json", help='cse eval results ({"scores": {...}}) to add to the model card')
    return parser


def run(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    out_dir = export_checkpoint(args.checkpoint, args.out_dir, eval_json=args.eval_json, overwrite=args.overwrite)
    print(f"exported: {out_dir}", flush=True)
