"""Score sentence pairs with a cross-encoder (sentence-transformers' `CrossEncoder`), Augmented SBERT's labeller.

The score is what `CrossEncoder.predict` returns: for a one-label model, its logit through the model's activation
(sentence-transformers' default for one label is the sigmoid, so scores lie in [0, 1]).
"""

from pathlib import Path

import numpy as np
from safetensors import safe_open
from torch import nn

from cse.errors import InputError, first_line
from cse.inference.model_directory import check_model_directory
from cse.library_notices import held_library_lines
from cse.models.loading import check_local_model_path

CLASSIFIER_TASK = "sequence-classification"  # sentence-transformers' Transformer module of a classifying cross-encoder


def load_cross_encoder(name: str):
    """sentence-transformers' `CrossEncoder` of a local directory or hub id, checked to give one trained score per pair.

    A local directory is checked as `cse encode` checks a model (`check_model_directory`: damaged JSON or
    safetensors, pickled weights) and, once loaded, for its classification head: sentence-transformers turns a plain
    or bi-encoder model into a `CrossEncoder` with a newly initialised head, whose scores are random.
    """
    try:
        from sentence_transformers import CrossEncoder
    except ImportError:
        raise InputError("cse label needs sentence-transformers: pip install 'cse[label]'") from None
    try:
        check_local_model_path(name)
        check_model_directory(name)
    except InputError as error:
        raise InputError(f"--cross-encoder {str(error).removeprefix('model ')}") from None
    with held_library_lines():  # a load report of the head initialised anew is noise before the refusal below
        try:
            model = CrossEncoder(name, model_kwargs={"use_safetensors": True})
        except Exception as error:  # transformers raises many types (a head of another size: RuntimeError)
            raise InputError(
                f"--cross-encoder '{name}': cannot be loaded ({type(error).__name__}: {first_line(error)})"
            ) from None
        for module in model:  # a causal-LM reranker (LogitScore) scores with its (often tied) LM head: unchecked
            if getattr(module, "transformer_task", None) == CLASSIFIER_TASK:
                check_classification_head(name, module.model)
        labels = model.config.num_labels
        if labels != 1:
            raise InputError(
                f"--cross-encoder '{name}': gives {labels} scores per pair (num_labels={labels}); "
                "labelling needs a one-score model (num_labels=1), such as an STS cross-encoder"
            )
    return model


def check_classification_head(name: str, classifier: nn.Module) -> None:
    """Raise `InputError` when the safetensors files `classifier` (a transformers `*ForSequenceClassification`) was
    loaded from lack any of its weights outside its base model: the head transformers would have initialised anew.

    A hub id (not a local directory) is left to the hub.
    """
    directory = Path(classifier.name_or_path).expanduser()
    if not directory.is_dir():
        return
    base = classifier.base_model_prefix + "."
    head = [key for key in classifier.state_dict() if not key.startswith(base)]  # BERT: classifier.weight, .bias
    stored: set[str] = set()
    for path in directory.glob("*.safetensors"):
        with safe_open(path, framework="pt") as file:
            stored.update(file.keys())
    missing = [key for key in head if key not in stored]
    if missing:
        raise InputError(
            f"--cross-encoder '{name}': its weights have no classification head ({', '.join(missing)} missing): a "
            "plain or bi-encoder model, which would score pairs with a random head; give a cross-encoder trained to "
            "score pairs"
        )


def score_pairs(model, pairs: list[tuple[str, str]], batch_size: int = 32, progress: bool = False) -> np.ndarray:
    """One score per pair (P,), float32, in the order of `pairs`; the cross-encoder sees each pair once."""
    scores = model.predict(pairs, batch_size=batch_size, show_progress_bar=progress, convert_to_numpy=True)
    return np.asarray(scores, dtype=np.float32).reshape(len(pairs))  # (P,) or (P, 1) -> (P,)
