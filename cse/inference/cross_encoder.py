"""Score sentence pairs with a cross-encoder (sentence-transformers' `CrossEncoder`), Augmented SBERT's labeller.

The score is what `CrossEncoder.predict` returns: for a one-label model, its logit through the model's activation
(sentence-transformers' default for one label is the sigmoid, so scores lie in [0, 1]).
"""

import numpy as np

from cse.errors import InputError, first_line
from cse.models.loading import check_local_model_path


def load_cross_encoder(name: str):
    """sentence-transformers' `CrossEncoder` of a local directory or hub id, checked to give one score per pair."""
    try:
        from sentence_transformers import CrossEncoder
    except ImportError:
        raise InputError("cse label needs sentence-transformers: pip install 'cse[label]'") from None
    try:
        check_local_model_path(name)
    except InputError as error:
        raise InputError(f"--cross-encoder {str(error).removeprefix('model ')}") from None
    try:
        model = CrossEncoder(name)
    except (OSError, ValueError) as error:
        raise InputError(f"--cross-encoder '{name}': cannot load it ({first_line(error)})") from None
    labels = model.config.num_labels
    if labels != 1:
        raise InputError(
            f"--cross-encoder '{name}': gives {labels} scores per pair (num_labels={labels}); "
            "labelling needs a one-score model (num_labels=1), such as an STS cross-encoder"
        )
    return model


def score_pairs(model, pairs: list[tuple[str, str]], batch_size: int = 32, progress: bool = False) -> np.ndarray:
    """One score per pair (P,), float32, in the order of `pairs`; the cross-encoder sees each pair once."""
    scores = model.predict(pairs, batch_size=batch_size, show_progress_bar=progress, convert_to_numpy=True)
    return np.asarray(scores, dtype=np.float32).reshape(len(pairs))  # (P,) or (P, 1) -> (P,)
