"""The masked-LM head of a pretrained checkpoint, for SimCSE's auxiliary MLM objective (§B, Table D.2)."""

from torch import nn
from transformers import AutoModelForMaskedLM

from cse.errors import InputError, first_line


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
        model, info = AutoModelForMaskedLM.from_pretrained(model_name_or_path, output_loading_info=True)
    except (OSError, ValueError) as error:
        reason = first_line(error)
        raise InputError(f"model.do_mlm: '{model_name_or_path}' has no masked-LM architecture ({reason})") from None
    heads = [name for name, _ in model.named_children() if name != model.base_model_prefix]
    if len(heads) != 1:
        raise InputError(f"model.do_mlm: the masked-LM head of {model.config.model_type} is not one module ({heads})")
    missing = [key for key in info["missing_keys"] if key.startswith(f"{heads[0]}.")]
    if missing:
        raise InputError(
            f"model.do_mlm: '{model_name_or_path}' has no trained masked-LM head ({missing[0]} is missing); "
            "use a checkpoint pretrained with MLM, e.g. bert-base-uncased, or set model.do_mlm: false"
        )
    decoder = model.get_output_embeddings()
    decoder.weight = nn.Parameter(decoder.weight.detach().clone())  # untied from the MLM model's embeddings too
    return getattr(model, heads[0])
