"""The model card (`README.md`) of an exported model: what it is, how it was trained, how to use it, what it scored.

Everything in it is read from the run (checkpoint, `config.yaml`, `metrics.csv`) or the exported encoder; the
usage snippets are the code that reproduces the embedding for this model's pooler.
"""

import json
import platform
from importlib import metadata
from pathlib import Path

from cse.errors import InputError
from cse.export.pooling import exported_pooling
from cse.models.encoder import SentenceEncoder
from cse.runs.finished_run import TrainingRun, Validation
from cse.runs.validation_curve import PLOT_INSTALL_HINT

# Trainer settings that change what is learned; the rest (logging, progress bars, devices found) do not.
TRAINER_KEYS = (
    "max_steps",
    "max_epochs",
    "min_steps",
    "max_time",
    "limit_train_batches",
    "accumulate_grad_batches",
    "gradient_clip_val",
    "gradient_clip_algorithm",
    "precision",
    "devices",
    "num_nodes",
    "strategy",
    "val_check_interval",
    "check_val_every_n_epoch",
    "deterministic",
)
DATA_KINDS = {
    "unsupervised": "sentences",
    "pairs": "(sent0, sent1) positive pairs",
    "triplets": "(sent0, sent1, hard_neg) triplets",
    "scored": "scored sentence pairs",
    None: "examples",
}
TAGS = ("sentence-transformers", "feature-extraction", "sentence-similarity", "simcse", "cse")
EXAMPLE = ["A man is playing a guitar.", "A woman is slicing an onion."]
CITATION = """@inproceedings{gao2021simcse,
  title = {{SimCSE}: Simple Contrastive Learning of Sentence Embeddings},
  author = {Gao, Tianyu and Yao, Xingcheng and Chen, Danqi},
  booktitle = {Proceedings of the 2021 Conference on Empirical Methods in Natural Language Processing (EMNLP)},
  pages = {6894--6910},
  year = {2021},
  doi = {10.18653/v1/2021.emnlp-main.552},
}"""
MATRYOSHKA_CITATION = """@inproceedings{kusupati2022matryoshka,
  title = {Matryoshka Representation Learning},
  author = {Kusupati, Aditya and Bhatt, Gantavya and Rege, Aniket and Wallingford, Matthew and Sinha, Aditya and
            Ramanujan, Vivek and Howard-Snyder, William and Chen, Kaifeng and Kakade, Sham and Jain, Prateek and
            Farhadi, Ali},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year = {2022},
  eprint = {2205.13147},
}"""
SIMCSEPP_CITATION = """@inproceedings{xu2023simcsepp,
  title = {{SimCSE++}: Improving Contrastive Learning for Sentence Embeddings from Two Perspectives},
  author = {Xu, Jiahao and Shao, Wei and Chen, Lihui and Liu, Lemao},
  booktitle = {Proceedings of the 2023 Conference on Empirical Methods in Natural Language Processing (EMNLP)},
  year = {2023},
  eprint = {2305.13192},
}"""


def render_model_card(
    run: TrainingRun,
    encoder: SentenceEncoder,
    model_name: str,
    eval_scores: dict[str, float] | None = None,
    curve_file: str | None = None,
    appendix: str | None = None,
) -> str:
    """Markdown for `README.md`.

    Args:
        run: the training run of the exported checkpoint.
        encoder: the exported encoder.
        model_name: how the snippets load the model (the export directory's name, or a hub id).
        eval_scores: `cse eval` results by task (`STS12`, ..., `Avg.`), from `read_eval_scores`.
        curve_file: the validation curve's PNG in the model directory; None: not drawn (no matplotlib).
        appendix: Markdown added before the framework versions (`cse sweep`'s results over seeds).
    """
    hparams, config = run.hyperparameters, run.config or {}
    base = str(hparams.get("model_name_or_path", "unknown"))
    backbone = encoder.backbone.config
    parameters = sum(p.numel() for p in encoder.backbone.parameters())
    parameters += sum(p.numel() for p in encoder.hf_pooler.parameters()) if encoder.hf_pooler is not None else 0
    exported = run.exported_validation
    dimensions = _matryoshka_dimensions(hparams)
    lines = [
        "---",
        "library_name: sentence-transformers",
        "pipeline_tag: sentence-similarity",
        f"tags: [{', '.join(TAGS + ('matryoshka',) * bool(dimensions))}]",
        *([f"base_model: {base}"] if _is_hub_id(base) else []),
        "---",
        "",
        f"# {model_name}",
        "",
        f"Sentence embeddings fine-tuned from `{base}` with {_objective(hparams)},",
        f"trained with `cse`. Each sentence maps to a {backbone.hidden_size}-dimensional vector; compare vectors "
        "with cosine similarity.",
        "",
        "| | |",
        "|---|---|",
        f"| Base model | `{base}` ({backbone.model_type}, {backbone.num_hidden_layers} layers, hidden size "
        f"{backbone.hidden_size}, {parameters:,} parameters) |",
        f"| Embedding | {exported_pooling(encoder).description} |",
        f"| Training pooler | `{encoder.pooler_type}`, mlp_only_train: {_value(encoder.mlp_only_train)} |",
        f"| Training data | {_data_summary(config, run)} |",
        f"| Loss | {_loss_summary(hparams, config, run.data_mode)} |",
        f"| Exported checkpoint | `{run.checkpoint.name}`, after {run.global_step:,} optimizer steps |",
        f"| STS dev of this checkpoint (×100) | {_dev_summary(exported, run.incomplete_metrics_line)} |",
    ]
    if dimensions:
        summary = _dimensions_summary(exported, dimensions, backbone.hidden_size)
        lines.append(f"| STS dev Spearman ×100 by embedding size (Matryoshka) | {summary} |")
    if eval_scores:
        summary = ", ".join(f"{task} {score:.2f}" for task, score in _scores_in_percent(eval_scores).items())
        lines.append(f"| `cse eval`, Spearman ×100 | {summary} |")
    lines += ["", "## Usage", "", *_usage(encoder, model_name, dimensions)]
    lines += ["## Training", "", *_training(run, hparams, config)]
    if run.validations:
        lines += _curve(curve_file)
    if eval_scores:
        lines += ["## Evaluation", "", "Spearman correlation ×100 of cosine similarity with the gold scores "]
        lines += ["(`cse eval`).", "", "| task | Spearman ×100 |", "|---|---|"]
        lines += [f"| {task} | {score:.2f} |" for task, score in _scores_in_percent(eval_scores).items()]
        lines.append("")
    lines += [appendix, ""] if appendix else []
    citations = [CITATION, "", MATRYOSHKA_CITATION] if dimensions else [CITATION]
    if hparams.get("off_dropout_negatives") or hparams.get("dimension_contrast_weight"):
        citations += ["", SIMCSEPP_CITATION]
    lines += ["## Framework versions", "", *_versions(run), "", "## Citation", "", "```bibtex", *citations, "```", ""]
    return "\n".join(lines)


def read_eval_scores(path: str | Path) -> dict[str, float]:
    """The `scores` of a `cse eval` JSON file, `{"scores": {"STS12": ..., "Avg.": ...}}`, in file order."""
    path = Path(path)
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"eval results {path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"eval results {path}: not a readable JSON file ({error})") from None
    scores = content.get("scores") if isinstance(content, dict) else None
    if not isinstance(scores, dict) or not scores:
        raise InputError(f"eval results {path}: expected a non-empty object under key 'scores'")
    for task, score in scores.items():
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise InputError(f"eval results {path}: scores.{task} is {score!r}, not a number")
    return {task: float(score) for task, score in scores.items()}


def _scores_in_percent(scores: dict[str, float]) -> dict[str, float]:
    """×100 for printing, as the paper does; a file whose scores already exceed 1 is taken as ×100 already."""
    scale = 100.0 if all(abs(score) <= 1.0 for score in scores.values()) else 1.0
    return {task: scale * score for task, score in scores.items()}


def _matryoshka_dimensions(hparams: dict) -> list[int]:
    """The trained Matryoshka dimensions (`model.matryoshka_dims`), largest first; empty without Matryoshka."""
    return [int(dimension) for dimension in hparams.get("matryoshka_dims") or ()]


def _dimensions_summary(validation: Validation | None, dimensions: list[int], hidden_size: int) -> str:
    """`768 (full): 80.10, 512: 79.95, ...`: the exported checkpoint's STS dev Spearman of the full embedding
    (`val/stsb_spearman`) and of each trained truncation (`val/stsb_spearman_dim{d}`)."""
    trained = ", ".join(map(str, dimensions))
    if validation is None:
        return f"not evaluated (trained dimensions {trained})"
    scores = {f"{hidden_size} (full)": validation.spearman}
    scores |= {str(d): validation.spearman_by_dimension.get(d) for d in dimensions if d < hidden_size}
    return ", ".join(f"{d}: {100 * s:.2f}" if s is not None else f"{d}: not logged" for d, s in scores.items())


def _usage(encoder: SentenceEncoder, name: str, dimensions: list[int]) -> list[str]:
    pooling = exported_pooling(encoder)
    smallest = dimensions[-1] if dimensions else None
    truncated = [
        "",
        f"Trained with Matryoshka representation learning (Kusupati et al., 2022) at {', '.join(map(str, dimensions))} "
        "dimensions: the first d coordinates of an embedding are an embedding on their own. Keep fewer with "
        "`truncate_dim` (cosine similarity normalizes after truncation):",
        "",
        "```python",
        "from sentence_transformers import SentenceTransformer",
        "",
        f"model = SentenceTransformer({name!r}, truncate_dim={smallest})  # or cse's load_model(..., truncate_dim=...)",
        f"embeddings = model.encode({EXAMPLE!r})  # (2, {smallest})",
        "```",
    ]
    if encoder.prompt is not None:
        return _prompt_usage(encoder, name)
    return [
        "With sentence-transformers:",
        "",
        "```python",
        "from sentence_transformers import SentenceTransformer",
        "",
        f"model = SentenceTransformer({name!r})",
        f"embeddings = model.encode({EXAMPLE!r})",
        "print(model.similarity(embeddings, embeddings))",
        "```",
        "",
        "With `cse` (also `cse encode MODEL sentences.txt embeddings.npy` and `cse search MODEL corpus.txt "
        "queries.txt`):",
        "",
        *_cse_encode_snippet(encoder, name),
        "model.build_index(['A man plays the guitar.', 'A chef is cooking.', 'A dog runs in the park.'])",
        "print(model.search(['Someone is playing music.'], top_k=2))",
        "```",
        *(truncated if dimensions else []),
        "",
        "With transformers alone:",
        "",
        "```python",
        "import torch",
        "from transformers import AutoModel, AutoTokenizer",
        "",
        f"tokenizer = AutoTokenizer.from_pretrained({name!r})",
        f"model = AutoModel.from_pretrained({name!r}).eval()",
        f"batch = tokenizer({EXAMPLE!r}, padding=True, truncation=True, return_tensors='pt')",
        "with torch.no_grad():",
        f"    output = model(**batch{', output_hidden_states=True' if pooling.all_layers else ''})",
        *pooling.transformers_snippet,
        "print(torch.nn.functional.cosine_similarity(embeddings[0], embeddings[1], dim=0))",
        "```",
        "",
    ]


def _cse_encode_snippet(encoder: SentenceEncoder, name: str) -> list[str]:
    """The opening lines of a python block that loads the model with `cse` and embeds `EXAMPLE`."""
    return [
        "```python",
        "from cse import load_model",
        "",
        f"model = load_model({name!r})",
        f"embeddings = model.encode({EXAMPLE!r})  # numpy float32 (2, {encoder.backbone.config.hidden_size})",
    ]


def _prompt_usage(encoder: SentenceEncoder, name: str) -> list[str]:
    """PromptBERT models: cse only, said plainly (sentence-transformers and AutoModel alone pool the plain sentence)."""
    return [
        f"**This model needs `cse` to load.** It embeds a sentence as {exported_pooling(encoder).description}. "
        "sentence-transformers and transformers alone cannot give this embedding (no sentence-transformers files are "
        "written); transformers loads the weights, but `cse` fills the template (`prompt` in `cse_config.json`).",
        "",
        *_cse_encode_snippet(encoder, name),
        "```",
        "",
    ]


def _training(run: TrainingRun, hparams: dict, config: dict) -> list[str]:
    data = config.get("data") or {}
    lines = ["### Data", ""]
    lines.append(f"- Training: {_data_summary(config, run)}.")
    if data.get("dev_file"):
        pairs = f"{run.dev_pairs:,} scored pairs" if run.dev_pairs is not None else "scored pairs"
        lines.append(f"- Model selection: `{Path(data['dev_file']).name}`, {pairs}, STS Spearman of cosine similarity.")
    lines += ["", "### Loss", "", f"{_loss_summary(hparams, config, run.data_mode)}.", ""]
    lines += ["### Hyperparameters", "", "| key | value |", "|---|---|"]
    settings = {f"model.{key}": value for key, value in hparams.items()}
    settings.update({f"data.{key}": value for key, value in data.items()})
    trainer = config.get("trainer") or {}
    settings.update({f"trainer.{key}": trainer[key] for key in TRAINER_KEYS if trainer.get(key) is not None})
    for key in ("seed_everything", "optimizer", "lr_scheduler"):
        if config.get(key) is not None:
            settings[key] = config[key]
    checkpoint = config.get("checkpoint") or {}
    settings.update({f"checkpoint.{key}": checkpoint[key] for key in ("monitor", "mode") if key in checkpoint})
    lines += [f"| `{key}` | `{_value(value)}` |" for key, value in settings.items()]
    if run.config is None:
        lines.append("| (trainer and data settings) | not found: no config.yaml beside the checkpoint |")
    lines += ["", "### Validation log", ""]
    if run.incomplete_metrics_line is not None:
        lines += [
            f"(Line {run.incomplete_metrics_line} of metrics.csv, its last, is incomplete: the run stopped while "
            "writing it. It is left out.)",
            "",
        ]
    if not run.validations:
        return [*lines, "No STS dev evaluations were logged (no dev file, or no metrics.csv found).", ""]
    lines += ["STS dev correlations ×100 during training; **bold**: the exported checkpoint.", ""]
    truncations = sorted({d for v in run.validations for d in v.spearman_by_dimension}, reverse=True)  # Matryoshka
    lines.append("| step | Spearman ×100 | Pearson ×100 |" + "".join(f" Spearman, dim {d} |" for d in truncations))
    lines.append("|---|---|---|" + "---|" * len(truncations))
    for validation in run.validations:
        mark = "**" if validation is run.exported_validation else ""
        pearson = f"{100 * validation.pearson:.2f}" if validation.pearson is not None else "-"
        row = f"| {mark}{validation.step}{mark} | {mark}{100 * validation.spearman:.2f}{mark} | {pearson} |"
        for d in truncations:
            score = validation.spearman_by_dimension.get(d)
            row += f" {100 * score:.2f} |" if score is not None else " - |"
        lines.append(row)
    return [*lines, ""]


def _curve(curve_file: str | None) -> list[str]:
    """The validation curve below the validation log's table, or how to get it."""
    if curve_file is None:
        return [f"(No plot of this curve: matplotlib is not installed; `{PLOT_INSTALL_HINT}` and export again.)", ""]
    return [f"![STS-B dev Spearman ×100 against optimizer steps]({curve_file})", ""]


def _data_summary(config: dict, run: TrainingRun) -> str:
    data = config.get("data") or {}
    files = (
        [data["train_file"]]
        if data.get("train_file")
        else [_source_file(entry) for entry in data.get("train_files") or []]
    )
    if not files:
        return "not recorded"
    names = ", ".join(f"`{Path(file).name}`" for file in files)
    if len(files) > 1:
        names = f"a mixture ({data.get('mixture', 'proportional')}) of {names}"
    if run.train_examples is None:
        return f"{names} (not readable at export: size unknown)"
    return f"{names}, {run.train_examples:,} {DATA_KINDS[run.data_mode]}"


def _source_file(entry: object) -> str:
    """The file of a `data.train_files` entry: a path, or a `{file, columns}` map."""
    return str(entry.get("file")) if isinstance(entry, dict) else str(entry)


def _objective(hparams: dict) -> str:
    """The training objective, with its paper."""
    if hparams.get("objective") == "tsdae":
        return "TSDAE's denoising auto-encoder objective (Wang et al., 2021)"
    return "SimCSE's contrastive objective (Gao et al., 2021)"


def _loss_summary(hparams: dict, config: dict, mode: str | None) -> str:
    """The objective the data mode selects (SimCSE's `cl_forward`; TSDAE's reconstruction), its parameters, and the
    MLM term if used."""
    if hparams.get("objective") == "tsdae":
        return (
            "TSDAE: cross-entropy of a decoder, tied to the encoder, rebuilding each sentence from the embedding of a "
            "copy with tsdae_deletion_ratio of its words deleted (Wang et al., 2021); "
            f"tsdae_deletion_ratio = {_value(hparams.get('tsdae_deletion_ratio'))}"
        )
    batch_size = (config.get("data") or {}).get("batch_size")
    negatives = ""
    if batch_size and mode == "triplets":  # the other positives and every hard negative of the batch
        negatives = f", {2 * batch_size - 1} negatives per anchor at batch size {batch_size}"
    elif batch_size:
        negatives = f", {batch_size - 1} in-batch negatives per anchor at batch size {batch_size}"
    if mode == "scored":
        name = str(hparams.get("scored_loss", "cosent"))
        summary = f"{name} on the cosine similarity of each scored pair"
        keys = ("scored_loss", "cosent_scale") if name == "cosent" else ("scored_loss",)
    else:
        positives = {
            "unsupervised": "the two dropout views of each sentence as the positive pair (SimCSE §3)",
            "pairs": "each (sent0, sent1) pair as positives (SimCSE §4)",
            "triplets": "each (sent0, sent1) pair as positives and sent0's hard negative added (SimCSE §4)",
        }.get(mode, "positive pairs from the training data")
        repetition = (config.get("data") or {}).get("word_repetition_rate")
        if repetition is not None and mode == "unsupervised":
            positives = (
                f"each sentence and a copy with some subwords repeated (ESimCSE word repetition, Wu et al., 2022; "
                f"word_repetition_rate = {_value(repetition)}) as the positive pair"
            )
        summary = f"InfoNCE: cross-entropy over cosine similarities / temp, {positives}{negatives}"
        keys = ("temp", "hard_negative_weight", "hard_negative_alpha") if mode == "triplets" else ("temp",)
        if hparams.get("momentum_queue_size"):
            summary += (
                ", plus the last momentum_queue_size sentences, encoded by a momentum encoder, as extra "
                "negatives (ESimCSE momentum contrast; the momentum encoder is not exported)"
            )
            keys += ("momentum_queue_size", "momentum")
    if hparams.get("pooler_type") == "prompt":
        summary += (
            ", each text embedded inside a template (PromptBERT, Jiang et al., 2022): anchors in prompt_template, "
            "positives and hard negatives in prompt_template_positive (none: the same)"
        )
        keys += ("prompt_template", "prompt_template_positive", "template_denoising")
    if hparams.get("matryoshka_dims"):
        summary += (
            ", summed over the embedding's first d dimensions for each d of matryoshka_dims (Matryoshka "
            "representation learning, Kusupati et al., 2022)"
        )
        keys += ("matryoshka_dims", "matryoshka_weights")
    if hparams.get("off_dropout_negatives"):
        summary += ", the negatives encoded with dropout off (SimCSE++ off-dropout sampling, Xu et al., 2023)"
        keys += ("off_dropout_negatives",)
    if hparams.get("dimension_contrast_weight"):
        summary += "; plus dimension_contrast_weight × dimension-wise contrastive loss (SimCSE++ DCL, Xu et al., 2023)"
        keys += ("dimension_contrast_weight", "dimension_contrast_temp")
    if hparams.get("do_mlm"):
        summary += "; plus mlm_weight × masked-language-modelling loss (SimCSE §B)"
        keys += ("mlm_weight", "mlm_probability")
    parameters = ", ".join(f"{key} = {_value(hparams[key])}" for key in keys if hparams.get(key) is not None)
    return f"{summary}; {parameters}" if parameters else summary


def _dev_summary(validation: Validation | None, incomplete_metrics_line: int | None) -> str:
    if validation is None and incomplete_metrics_line is not None:
        return "not in metrics.csv, whose last line is incomplete (see the validation log)"
    if validation is None:
        return "not evaluated"
    pearson = f", Pearson {100 * validation.pearson:.2f}" if validation.pearson is not None else ""
    return f"Spearman {100 * validation.spearman:.2f}{pearson} (step {validation.step:,})"


def _versions(run: TrainingRun) -> list[str]:
    installed = {"python": platform.python_version()}
    for package in ("cse", "torch", "transformers", "lightning", "sentence-transformers"):
        try:
            installed[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    lines = ["Exported with " + ", ".join(f"{name} {version}" for name, version in installed.items()) + "."]
    if run.versions:
        lines.append("Trained with " + ", ".join(f"{name} {version}" for name, version in run.versions.items()) + ".")
    return lines


def _value(value: object) -> str:
    """YAML-like scalars (true, null, 3e-05) as in the run's config.yaml; mappings as JSON."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _is_hub_id(name: str) -> bool:
    """`org/name` or `name`, not a local path (the card's `base_model` must be a hub id)."""
    return not Path(name).expanduser().exists() and not name.startswith(("/", ".", "~")) and name.count("/") <= 1
