"""`cse export CHECKPOINT OUT_DIR`: a training checkpoint as a model directory with its model card, optionally
uploaded to the Hugging Face Hub (`--push-to-hub REPO`).

`cse fit` ends with the same export of its best checkpoint (`cse.export.checkpoint`).
"""

import argparse

from cse.errors import InputError
from cse.export.checkpoint import export_checkpoint
from cse.export.hub import hub_token, push_to_hub
from cse.runs.layout import find_checkpoint


def build_parser() -> argparse.ArgumentParser:
    """`cse export CHECKPOINT OUT_DIR [--overwrite] [--eval-json FILE] [--push-to-hub REPO [--private] [--token T]]`."""
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
    parser.add_argument(
        "--push-to-hub",
        metavar="REPO",
        help="then upload OUT_DIR to the Hugging Face Hub repository REPO (USER/NAME or ORG/NAME, created if "
        "needed); the model card's snippets load REPO",
    )
    parser.add_argument("--private", action="store_true", help="with --push-to-hub: create REPO as a private repo")
    parser.add_argument(
        "--token",
        help="with --push-to-hub: a Hugging Face token with write access (default: HF_TOKEN or `hf auth login`'s; "
        "prefer those, a token on the command line stays in your shell history)",
    )
    return parser


def run(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    if args.push_to_hub is None and (args.private or args.token is not None):
        raise InputError(f"{'--private' if args.private else '--token'}: only with --push-to-hub REPO")
    if args.push_to_hub is not None:  # checked before the export: a typo or a missing token costs no export
        token = hub_token(args.push_to_hub, args.token)
        message = f"cse export of {find_checkpoint(args.checkpoint).name}"
    out_dir = export_checkpoint(
        args.checkpoint, args.out_dir, eval_json=args.eval_json, overwrite=args.overwrite, model_name=args.push_to_hub
    )
    print(f"exported: {out_dir}", flush=True)
    if args.push_to_hub is not None:
        url = push_to_hub(out_dir, args.push_to_hub, token=token, private=args.private, commit_message=message)
        print(f"pushed: {url}", flush=True)
