"""TSDAE (Wang, Reimers & Gurevych, Findings of EMNLP 2021, "TSDAE: Using Transformer-based Sequential Denoising
Auto-Encoder for Unsupervised Sentence Embedding Learning"): rebuild each sentence from the embedding of a damaged copy.

The encoder embeds the sentence after word deletion (`cse.data.word_deletion`); a decoder, initialized from the same
checkpoint as a causal LM whose cross-attention sees only that embedding (a sequence of length 1), predicts the
original tokens; the loss is their cross-entropy. As sentence-transformers' `DenoisingAutoEncoderLoss`
(UKPLab/sentence-transformers, `sentence_transformers/sentence_transformer/losses/denoising_auto_encoder.py`) with
`tie_encoder_decoder=True`: every encoder parameter that the decoder's base model also has (embeddings, and the
self-attention and feed-forward of every layer) is the decoder's tensor, so the LM head, tied to the word embeddings,
decodes with the encoder's embeddings; only cross-attention and the LM head's transform belong to the decoder alone.
Only the encoder is exported.
"""

from collections.abc import Callable, Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel

from cse.errors import InputError, first_line
from cse.models.batch import TOKEN_KEYS, BatchError
from cse.models.grad_cache import chunked_checkpoint
from cse.models.word_deletion import delete_words

Objective = Literal["contrastive", "tsdae"]
# Settings that TSDAE cannot combine with: (key, value that is off, why).
_REFUSED = (
    ("do_mlm", False, "SimCSE's auxiliary MLM loss is not part of TSDAE"),
    ("matryoshka_dims", None, "Matryoshka prefixes are defined for the contrastive and scored-pair losses only"),
    ("compile", False, "only the contrastive training step is compiled"),
)


def check_tsdae_settings(settings: Mapping[str, Any]) -> None:
    """One line naming the `model.*` key that TSDAE cannot use.

    Raises:
        InputError: an unknown objective, a deletion ratio outside [0, 1), SimCSE's MLP pooler, or an option of
            `_REFUSED` turned on.
    """
    if settings["objective"] not in ("contrastive", "tsdae"):
        raise InputError(f"model.objective: must be contrastive or tsdae, got {settings['objective']!r}")
    ratio = settings["tsdae_deletion_ratio"]
    if not 0 <= ratio < 1:
        raise InputError(f"model.tsdae_deletion_ratio: must be in [0, 1) (TSDAE: 0.6), got {ratio}")
    if settings["objective"] != "tsdae":
        return
    if settings["pooler_type"] == "cls":
        raise InputError(
            "model.pooler_type: 'cls' adds SimCSE's MLP, which TSDAE does not have; use cls_before_pooler (the [CLS] "
            "vector, TSDAE's pooling) or avg"
        )
    for key, off, why in _REFUSED:
        if settings[key] != off:
            raise InputError(f"model.{key}: {settings[key]} cannot be used with model.objective: tsdae ({why})")


def tie_encoder_to_decoder(encoder: nn.Module, decoder: nn.Module) -> list[str]:
    """Make each encoder parameter named as a decoder parameter that very tensor; returns the names tied.

    As sentence-transformers' `_tie_encoder_decoder_weights`: the encoder module's attribute is replaced by the
    decoder's parameter, whose values (the same checkpoint's) become the shared ones; decoder-only parameters
    (cross-attention) have no encoder counterpart and stay the decoder's.
    """
    encoder_modules = dict(encoder.named_modules())
    tied = []
    for name, parameter in decoder.named_parameters():
        module_name, _, attribute = name.rpartition(".")
        module = encoder_modules.get(module_name)
        if module is not None and hasattr(module, attribute):
            setattr(module, attribute, parameter)
            tied.append(name)
    return tied


class TSDAEDecoder(nn.Module):
    """The decoder: `AutoModelForCausalLM` with `is_decoder` and `add_cross_attention`, in train mode (dropout on, as
    sentence-transformers' `fit` puts its loss modules in training mode).

    Args:
        decoder: the causal LM, its base model tied to the encoder (`tied_to` builds it so).
    """

    def __init__(self, decoder: PreTrainedModel) -> None:
        super().__init__()
        self.decoder = decoder

    @classmethod
    def tied_to(cls, backbone: PreTrainedModel, model_name_or_path: str) -> "TSDAEDecoder":
        """Load the decoder from the encoder's checkpoint and tie the encoder `backbone`'s parameters to it."""
        config = AutoConfig.from_pretrained(model_name_or_path)
        config.is_decoder, config.add_cross_attention = True, True
        try:
            decoder = AutoModelForCausalLM.from_pretrained(model_name_or_path, config=config, dtype=torch.float32)
        except (OSError, ValueError) as error:
            raise InputError(
                f"model.objective: tsdae decodes with '{model_name_or_path}' as a causal LM with cross-attention, "
                f"which it has none of ({first_line(error)})"
            ) from None
        if not tie_encoder_to_decoder(backbone, getattr(decoder, decoder.base_model_prefix)):
            raise InputError(f"model.objective: tsdae found no weights of '{model_name_or_path}' to share")
        return cls(decoder.train())

    def forward(self, sentence_embeddings: Tensor, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Summed cross-entropy of each original sentence's tokens after the first, given its embedding.

        Args:
            sentence_embeddings: (b, H), the damaged sentences' embeddings.
            input_ids: (b, L) the original sentences, right-padded; token t + 1 is predicted from tokens ≤ t.
            attention_mask: (b, L), 0 on padding, which is not predicted (the reference ignores the pad id).
        """
        size = sentence_embeddings.size(0)
        logits = self.decoder(
            input_ids=input_ids[:, :-1],  # no attention mask, as the reference: causal, and padding comes last
            encoder_hidden_states=sentence_embeddings[:, None],  # (b, H) -> (b, 1, H)
            encoder_attention_mask=attention_mask.new_ones(size, 1),
            use_cache=False,
        ).logits  # (b, L - 1, V)
        labels = input_ids[:, 1:].masked_fill(attention_mask[:, 1:] == 0, -100)  # (b, L - 1)
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # at least float32 (fp16 logits)
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="sum")


def tsdae_loss(
    encoder: Callable[..., Tensor],
    decoder: TSDAEDecoder,
    batch: Mapping[str, Tensor],
    deletion_ratio: float,
    mini_batch_size: int | None = None,
    all_gather: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """TSDAE's loss on a `TrainingBatch` of single sentences (B, 1, L) with their `word_ids`: words deleted here
    (`cse.models.word_deletion`), then `reconstruction_loss`."""
    if "word_ids" not in batch:
        raise BatchError("model.objective: tsdae needs word_ids in the batch (data.word_ids)")
    original = {key: batch[key][:, 0] for key in TOKEN_KEYS if key in batch}  # (B, 1, L) -> (B, L)
    pad_token_id = decoder.decoder.config.pad_token_id or 0
    noisy = delete_words(original, batch["word_ids"][:, 0], deletion_ratio, pad_token_id)
    return reconstruction_loss(encoder, decoder, noisy, original, mini_batch_size, all_gather)


def reconstruction_loss(
    encoder: Callable[..., Tensor],
    decoder: TSDAEDecoder,
    noisy: Mapping[str, Tensor],
    original: Mapping[str, Tensor],
    mini_batch_size: int | None = None,
    all_gather: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """The mean cross-entropy over the predicted tokens of every original sentence, on every process.

    Args:
        encoder: (b, L') token tensors by keyword -> (b, H) embeddings.
        decoder: the tied decoder.
        noisy: (B, L') token tensors of the damaged sentences, which the encoder embeds.
        original: (B, L) `input_ids` and `attention_mask` of the sentences to rebuild.
        mini_batch_size: encode and decode this many sentences at a time, activations recomputed in the backward
            pass (GradCache's memory; the loss is a sum over sentences, so no representation gradient is needed).
        all_gather: under DDP, stacks a tensor of every process: the loss is then this process's summed
            cross-entropy × N over the tokens of all N processes, so that DDP's gradient average is the gradient of
            the mean over the whole N·B batch (and the processes' mean loss is its loss).
    """
    target_ids, target_mask = original["input_ids"], original["attention_mask"]

    def summed(target_ids: Tensor, target_mask: Tensor, **noisy: Tensor) -> Tensor:
        return decoder(encoder(**noisy), target_ids, target_mask)

    inputs = dict(noisy) | {"target_ids": target_ids, "target_mask": target_mask}
    total = torch.stack(chunked_checkpoint(summed, inputs, mini_batch_size)).sum()
    tokens = target_mask[:, 1:].sum()  # predicted tokens: all but each sentence's first
    if all_gather is None:
        return total / tokens
    everywhere = all_gather(tokens)  # (N,)
    return total * everywhere.numel() / everywhere.sum()
