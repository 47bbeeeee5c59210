"""`cse export CHECKPOINT OUT_DIR`: a training checkpoint as a model directory with its model card.

`cse fit` ends with the same export of its best checkpoint (`SimCSECLI.after_fit`).
"""

import argparse
from pathlib import Path

from cse.export import export_hf_model
from cse.export_target import check_export_target
from cse.model_card import read_eval_scores, render_model_card
from cse.models.inference import load_encoder
from cse.training_run import find_checkpoint, read_training_run, run_directory


def export_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    *,
    run_dir: str | Path | None = None,
    eval_json: str | Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Export a `cse` checkpoint for transformers, sentence-transformers and `cse`, with a model card.

    Args:
        checkpoint: a `.ckpt` file, or a run directory (its best checkpoint, else `last.ckpt`).
        out_dir: the model directory to write (atomically).
        run_dir: where the run's `config.yaml` and `metrics.csv` are; None looks beside the checkpoint.
        eval_json: `cse eval` results to add to the card.
        overwrite: replace a previous export at `out_dir`. Nothing else is ever replaced: not a directory that holds
            the checkpoint or its run folder, nor one that is not an export (see `cse.export_target`).
    """
    checkpoint = find_checkpoint(checkpoint)
    sources = (checkpoint, run_directory(checkpoint, run_dir))
    check_export_target(out_dir, overwrite, sources)  # fail before the slow part
    eval_scores = read_eval_scores(eval_json) if eval_json is not None else None
    run = read_training_run(checkpoint, run_dir)
    encoder, tokenizer = load_encoder(checkpoint)
    card = render_model_card(run, encoder, Path(out_dir).name, eval_scores)
    return export_hf_model(encoder, tokenizer, out_dir, model_card=card, overwrite=overwrite, sources=sources)


def run(argv: list[str]) -> None:
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
    args = parser.parse_args(argv)
    out_dir = export_checkpoint(args.checkpoint, args.out_dir, eval_json=args.eval_json, overwrite=args.overwrite)
    print(f"exported: {out_dir}", flush=True)
