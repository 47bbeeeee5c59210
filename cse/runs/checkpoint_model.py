"""The sentence encoder inside a `cse` training checkpoint, for export, evaluation and encoding."""

from pathlib import Path

from transformers import PreTrainedTokenizerBase

from cse.errors import InputError, first_line
from cse.models.checkpoint_assets import BACKBONE_ASSETS_KEY, backbone_from_assets, tokenizer_from_assets
from cse.models.encoder import SentenceEncoder
from cse.models.poolers import PoolerType, inference_pooler
from cse.models.prompt_template import checkpoint_prompt_pooler
from cse.runs.checkpoint_file import load_checkpoint


def load_checkpoint_encoder(
    path: Path, pooler_type: PoolerType | None = None
) -> tuple[SentenceEncoder, PreTrainedTokenizerBase]:
    """The encoder (eval mode) and tokenizer of a `cse` checkpoint, built from the backbone config and tokenizer files
    it carries (`cse.models.checkpoint_assets`), so the base model is not needed.

    Args:
        path: the `.ckpt` file.
        pooler_type: None, or the pooler the caller expects; it must be the one that gives the trained embedding.
    """
    checkpoint = load_checkpoint(path)
    where = f"checkpoint {path}"
    missing = [key for key in (BACKBONE_ASSETS_KEY, "hyper_parameters", "state_dict") if key not in checkpoint]
    if missing:
        raise InputError(f"{where}: not a cse checkpoint (no {', '.join(missing)})")
    assets, hparams = checkpoint[BACKBONE_ASSETS_KEY], checkpoint["hyper_parameters"]
    if not isinstance(hparams, dict) or not {"pooler_type", "mlp_only_train"} <= hparams.keys():
        raise InputError(f"{where}: not a cse checkpoint (no pooler_type and mlp_only_train hyperparameters)")
    try:
        backbone = backbone_from_assets(assets)
    except Exception as error:  # a damaged or foreign config: transformers raises several types
        raise InputError(
            f"{where}: its backbone config cannot be used ({type(error).__name__}: {first_line(error)})"
        ) from None
    try:
        tokenizer = tokenizer_from_assets(assets)
    except Exception as error:  # damaged tokenizer files: tokenizers and transformers raise several types
        raise InputError(
            f"{where}: its tokenizer cannot be loaded ({type(error).__name__}: {first_line(error)})"
        ) from None
    prompt = checkpoint_prompt_pooler(hparams, tokenizer, backbone.config)
    encoder = SentenceEncoder(backbone, hparams["pooler_type"], hparams["mlp_only_train"], prompt)
    prefix = "encoder."
    try:
        encoder.load_state_dict(
            {k.removeprefix(prefix): v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
        )
    except (RuntimeError, AttributeError) as error:  # missing, unexpected or mis-shaped weights
        details = [line.strip() for line in str(error).splitlines()[1:] if line.strip()]  # line 1 is a title
        reason = details[0] if details else first_line(error)
        raise InputError(f"{where}: its weights do not fit its backbone config ({reason})") from None
    trained = inference_pooler(encoder.pooler_type, encoder.mlp_only_train)
    if pooler_type not in (None, trained):
        raise InputError(
            f"{where}: trained to embed with pooler '{trained}', not '{pooler_type}' "
            "(leave out --pooler for checkpoints)"
        )
    return encoder.eval(), tokenizer
