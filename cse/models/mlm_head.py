"""The masked-LM head of a pretrained checkpoint, for SimCSE's auxiliary MLM objective (§B, Table D.2)."""

from torch import nn
from transformers import AutoModelForMaskedLM, PreTrainedModel

from cse.errors import InputError, first_line


def load_mlm_head(model_name_or_path: str, backbone: PreTrainedModel) -> nn.Module:
    """The checkpoint's own MLM head, (N, L, H) -> (N, L, V), with its decoder tied to `backbone`'s embeddings.

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
    head = getattr(model, heads[0])
    if model.config.tie_word_embeddings:
        model.get_output_embeddings().weight = backbone.get_input_embeddings().weight
    return head
