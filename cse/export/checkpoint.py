"""A training checkpoint as a model directory with its model card: what `cse export` and the end of `cse fit` do."""

from collections.abc import Mapping
from pathlib import Path

from cse.export.directory import write_model_directory
from cse.export.model_card import read_eval_scores, render_model_card
from cse.export.target import check_export_target
from cse.runs.checkpoint_model import load_checkpoint_encoder
from cse.runs.finished_run import read_training_run
from cse.runs.layout import find_checkpoint, run_directory
from cse.runs.validation_curve import CURVE_FILE, curve_png


def export_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    *,
    run_dir: str | Path | None = None,
    eval_json: str | Path | None = None,
    overwrite: bool = False,
    model_name: str | None = None,
    appendix: str | None = None,
    extra_files: Mapping[str, bytes] | None = None,
) -> Path:
    """Export a `cse` checkpoint for transformers, sentence-transformers and `cse`, with a model card.

    Args:
        checkpoint: a `.ckpt` file, or a run directory (its best checkpoint, else `last.ckpt`).
        out_dir: the model directory to write (atomically).
        run_dir: where the run's `config.yaml` and `metrics.csv` are; None looks beside the checkpoint.
        eval_json: `cse eval` results to add to the card.
        overwrite: replace a previous export at `out_dir`. Nothing else is ever replaced: not a directory that holds
            the checkpoint or its run folder, nor one that is not an export (see `cse.export.target`).
        model_name: how the card's title and usage snippets load the model, e.g. the hub id it will be pushed to;
            None: the name of `out_dir`.
        appendix: Markdown added to the model card (`cse sweep`'s results over seeds).
        extra_files: more files for the model directory by name (the appendix's plots).
    """
    checkpoint = find_checkpoint(checkpoint)
    sources = (checkpoint, run_directory(checkpoint, run_dir))
    check_export_target(out_dir, overwrite, sources)  # fail before the slow part
    eval_scores = read_eval_scores(eval_json) if eval_json is not None else None
    run = read_training_run(checkpoint, run_dir)
    encoder, tokenizer = load_checkpoint_encoder(checkpoint)
    curve = curve_png({"STS-B dev": [(v.step, v.spearman) for v in run.validations]})
    curve_file = CURVE_FILE if curve is not None else None
    card = render_model_card(run, encoder, model_name or Path(out_dir).name, eval_scores, curve_file, appendix)
    files = {CURVE_FILE: curve} if curve is not None else {}
    return write_model_directory(
        encoder,
        tokenizer,
        out_dir,
        model_card=card,
        overwrite=overwrite,
        sources=sources,
        matryoshka_dims=run.hyperparameters.get("matryoshka_dims"),
        extra_files=files | dict(extra_files or {}),
    )
