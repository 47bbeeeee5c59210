"""The sentence encoder: a Hugging Face backbone, a pooler and SimCSE's MLP head (no Lightning)."""

import torch.nn.functional as F
from torch import Tensor, nn
from transformers import PreTrainedModel

from cse.errors import InputError
from cse.models.loading import load_backbone, load_tokenizer
from cse.models.poolers import POOLER_TYPES, POOLERS_NEEDING_ALL_LAYERS, MLPHead, PoolerType, pool, uses_mlp
from cse.models.prompt_pooler import PromptPooler
from cse.models.prompt_template import PromptSettings, build_prompt_pooler


class SentenceEncoder(nn.Module):
    """Backbone + pooler (+ MLP for `cls`), (B, L) token ids -> (B, H) sentence embeddings.

    The backbone's own pooler (BERT's Linear+Tanh, trained for NSP) is detached from the forward pass, as
    SimCSE builds BERT with `add_pooling_layer=False`; it is kept frozen in `hf_pooler` so that the export
    can write a complete checkpoint (or put the trained MLP in its place).

    Args:
        backbone: any `AutoModel` encoder.
        pooler_type: one of `cls`, `cls_before_pooler`, `avg`, `avg_top2`, `avg_first_last`.
        mlp_only_train: use the MLP in training only (unsupervised SimCSE, §3); only for `cls` and `prompt`.
        prompt: PromptBERT's pooler (`cse.models.prompt_pooler`), required by and only for `prompt`.
        normalize: L2-normalise every embedding, last: a loaded sentence-transformers model's `Normalize` module.
    """

    def __init__(
        self,
        backbone: PreTrainedModel,
        pooler_type: PoolerType = "cls",
        mlp_only_train: bool = False,
        prompt: PromptPooler | None = None,
        normalize: bool = False,
    ):
        super().__init__()
        if pooler_type not in (*POOLER_TYPES, "prompt"):
            raise InputError(
                f"model.pooler_type: unknown pooler '{pooler_type}'; choose one of {', '.join(POOLER_TYPES)}, prompt"
            )
        if (prompt is None) == (pooler_type == "prompt"):
            raise ValueError("a PromptPooler is needed by, and only by, pooler_type 'prompt'")
        if mlp_only_train and pooler_type not in ("cls", "prompt"):
            raise InputError(f"model.mlp_only_train: only the 'cls' pooler has an MLP, not '{pooler_type}'")
        self.backbone = backbone
        self.pooler_type = pooler_type
        self.mlp_only_train = mlp_only_train
        self.prompt = prompt
        self.normalize = normalize
        self.hf_pooler = getattr(backbone, "pooler", None)
        if self.hf_pooler is not None:
            backbone.pooler = None  # skip it in forward: no wasted compute, no unused parameters under DDP
            self.hf_pooler.requires_grad_(False)
        if uses_mlp(pooler_type, mlp_only_train, training=False) and not _has_dense_pooler(self.hf_pooler):
            raise InputError(
                f"model.pooler_type: 'cls' keeps its MLP at inference, which the export stores as the model's "
                f"pooler, but {backbone.config.model_type} has no Linear pooler; set model.mlp_only_train: true "
                "or use another pooler"
            )
        hidden_size = backbone.config.hidden_size
        has_mlp = pooler_type == "cls" or (pooler_type == "prompt" and mlp_only_train)
        mlp = MLPHead(hidden_size, backbone.config.initializer_range).to(backbone.dtype) if has_mlp else None
        self.mlp = mlp  # in the backbone's dtype: a model loaded for inference in bfloat16 pools in it

    @classmethod
    def from_pretrained(
        cls,
        model_name_or_path: str,
        pooler_type: PoolerType = "cls",
        mlp_only_train: bool = False,
        prompt: PromptSettings | None = None,
    ) -> "SentenceEncoder":
        """Load the backbone (in train mode) from a local directory or hub id, and its tokenizer for a prompt."""
        backbone = load_backbone(model_name_or_path)
        if prompt is None:
            return cls(backbone, pooler_type, mlp_only_train)
        pooler = build_prompt_pooler(prompt, load_tokenizer(model_name_or_path), backbone.config)
        return cls(backbone, pooler_type, mlp_only_train, pooler)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        token_type_ids: Tensor | None = None,
        template: Tensor | None = None,
        denoise: bool = False,
    ) -> Tensor:
        """Embed a batch: (B, L) ids and mask -> (B, H). `prompt` only: `template` (B,), each row's prompt template;
        `denoise`, subtract the template's state in eval mode too (`PromptPooler.forward`)."""
        if self.prompt is not None:  # PromptBERT rebuilds the rows; token types are 0, as the reference's
            pooled = self.prompt(self.backbone, input_ids, attention_mask, template, denoise)
        else:
            inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                inputs["token_type_ids"] = token_type_ids
            needs_all_layers = self.pooler_type in POOLERS_NEEDING_ALL_LAYERS
            outputs = self.backbone(**inputs, output_hidden_states=needs_all_layers, return_dict=True)
            pooled = pool(self.pooler_type, attention_mask, outputs.last_hidden_state, outputs.hidden_states)
        if self.mlp is not None and uses_mlp(self.pooler_type, self.mlp_only_train, self.training):
            pooled = self.mlp(pooled)
        return F.normalize(pooled, dim=-1) if self.normalize else pooled

    def export_state_dict(self) -> dict[str, Tensor]:
        """The backbone's state dict as `AutoModel` expects it, with the pooler that gives this encoder's embedding.

        When the MLP is used at inference it becomes the model's own pooler (as SimCSE's
        `simcse_to_huggingface.py` intends), so `pooler_output` is the embedding; otherwise the
        original pooler weights are written back untouched.
        """
        state = {name: tensor.detach().clone() for name, tensor in self.backbone.state_dict().items()}
        if self.hf_pooler is not None:
            pooler_state = self.hf_pooler.state_dict()
            if uses_mlp(self.pooler_type, self.mlp_only_train, training=False):
                pooler_state = {f"dense.{name}": tensor for name, tensor in self.mlp.dense.state_dict().items()}
            state.update({f"pooler.{name}": tensor.detach().clone() for name, tensor in pooler_state.items()})
        return state


def _has_dense_pooler(pooler: nn.Module | None) -> bool:
    """True for BERT/RoBERTa-style poolers, Linear(H, H) + Tanh: the same function as `MLPHead`."""
    return isinstance(getattr(pooler, "dense", None), nn.Linear) and isinstance(
        getattr(pooler, "activation", None), nn.Tanh
    )
