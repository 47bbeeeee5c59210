"""The masked-LM head of a pretrained checkpoint, for SimCSE's auxiliary MLM objective (§B, Table D.2)."""

import torch
from torch import Tensor, nn
from transformers import AutoModelForMaskedLM, PreTrainedModel

from cse.errors import InputError, first_line

# The head of each `*ForMaskedLM` that is not one module: its parts in the order its forward applies them.
HEAD_PARTS: dict[str, tuple[str, ...]] = {
    "DistilBertForMaskedLM": ("vocab_transform", "activation", "vocab_layer_norm", "vocab_projector"),
    "ModernBertForMaskedLM": ("head", "decoder"),
}


def load_mlm_head(model_name_or_path: str) -> nn.Module:
    """The checkpoint's own MLM head, (N, L, H) -> (N, L, V), its decoder an untied copy.

    As SimCSE's `train.py`, which loads the pretrained `cls.predictions` into `BertForCL.lm_head` with
    `load_state_dict`: a copy of the decoder weights (the pretrained word embeddings) that trains apart from the
    encoder's embeddings, since nothing ties the two in `BertForCL`. (The reference leaves a RoBERTa head randomly
    initialized, as its `train.py` copies the pretrained head for BERT only; cse copies every model's head.)

    Raises:
        InputError: when the checkpoint has no trained MLM head (e.g. a sentence-transformers model).
    """
    try:
        model, info = AutoModelForMaskedLM.from_pretrained(
            model_name_or_path,
            output_loading_info=True,
            dtype=torch.float32,  # as the backbone, whatever is saved
        )
    except (OSError, ValueError) as error:
        reason = first_line(error)
        raise InputError(f"model.do_mlm: '{model_name_or_path}' has no masked-LM architecture ({reason})") from None
    base = f"{model.base_model_prefix}."
    missing = [key for key in info["missing_keys"] if not key.startswith(base)]
    if missing:
        raise InputError(
            f"model.do_mlm: '{model_name_or_path}' has no trained masked-LM head ({missing[0]} is missing); "
            "use a checkpoint pretrained with MLM, e.g. bert-base-uncased, or set model.do_mlm: false"
        )
    if _decodes_with_input_embeddings(model):
        return _EmbeddingDecoderHead(model.lm_predictions, model.get_input_embeddings())
    decoder = model.get_output_embeddings()
    decoder.weight = nn.Parameter(decoder.weight.detach().clone())  # untied from the MLM model's embeddings too
    return _head(model)


def _head(model: PreTrainedModel) -> nn.Module:
    """The module(s) between the encoder's last hidden state and the logits."""
    name = type(model).__name__
    if name in HEAD_PARTS:
        return nn.Sequential(*(getattr(model, part) for part in HEAD_PARTS[name]))
    heads = [
        child
        for child_name, child in model.named_children()
        if child_name != model.base_model_prefix and any(True for _ in child.parameters())  # not the loss function
    ]
    if len(heads) != 1:
        names = [child_name for child_name, _ in model.named_children() if child_name != model.base_model_prefix]
        raise InputError(f"model.do_mlm: the masked-LM head of {model.config.model_type} is not one module ({names})")
    return heads[0]


def _decodes_with_input_embeddings(model: PreTrainedModel) -> bool:
    """DeBERTa-v2/v3 saved in the original layout (`config.legacy: false`): its head takes the word embeddings as an
    argument and decodes with them, instead of holding a decoder."""
    return type(model).__name__ == "DebertaV2ForMaskedLM" and not model.config.legacy


class _EmbeddingDecoderHead(nn.Module):
    """A head called as `head(hidden, word_embeddings)`, with an untied copy of the word embeddings as its decoder."""

    def __init__(self, head: nn.Module, word_embeddings: nn.Embedding) -> None:
        super().__init__()
        self.head = head
        self.word_embeddings = nn.Embedding.from_pretrained(word_embeddings.weight.detach().clone(), freeze=False)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.head(hidden, self.word_embeddings)  # (N, L, H) -> (N, L, V)
