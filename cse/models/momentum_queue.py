"""ESimCSE's momentum contrast (Wu et al., COLING 2022, §3.2): a queue of earlier batches' embeddings as negatives.

A momentum backbone, θ_m ← m · θ_m + (1 - m) · θ, encodes each batch's sentences (the anchor view, the
original sentence) without dropout; their embeddings are appended to a queue of the last `size` ones, which InfoNCE
scores every anchor against as extra negatives in the following steps. As the reference code (caskcsg/sentemb,
commit 5eeec55, ESimCSE: `BertForCL.momentum_model` and `cl_forward` in esimcse/models.py, `CLTrainer.compute_loss` in
esimcse/trainers.py):

- the momentum model is the backbone only, its weights drawn anew by the model's own initialization, not the
  pretrained ones: the reference copies `self.bert` into `momentum_model` in `BertForCL.__init__`, but that runs
  before `from_pretrained` loads the checkpoint, which holds no `momentum_model.*` weights, so its momentum model
  starts from the random initialization (its ESimCSE/logs/bert-base-uncased.log lists every `momentum_model.*`
  weight as "newly initialized"), and the EMA brings it to the trained weights (0.995^1000 < 1% left after 1,000
  steps). The pooler and MLP applied to its output are the trained encoder's own (in their training form: the MLP
  of `cls`, even with mlp_only_train);
- each training step first moves θ_m towards the weights the last optimizer step left, then computes the loss with
  the queue as it stands, then encodes the batch with the momentum model in eval mode (no dropout, no gradient) and
  enqueues it: `queue = cat(queue, new)[-size:]`, oldest first;
- the queue is emptied at the start of every epoch (the trainer sets `pre_z1 = None` per epoch).

Under DDP every process enqueues the embeddings of all processes in rank order, so all hold the same queue, that of
one process on the concatenated batch (the reference keeps a queue per process). The momentum model's weights and
the queue are in the checkpoint (exact resume), take no gradient and are not part of the exported encoder.
"""

import copy

import torch
from torch import Tensor, nn
from transformers import AutoModel, PreTrainedModel

from cse.errors import InputError
from cse.library_notices import expect_modules_in_eval_mode
from cse.models.encoder import SentenceEncoder
from cse.models.poolers import POOLERS_NEEDING_ALL_LAYERS, pool, uses_mlp


class MomentumQueue(nn.Module):
    """The momentum backbone and the queue of its (Q, H) embeddings, for `SimCSE` with `momentum_queue_size` > 0.

    Args:
        encoder: the trained encoder, whose backbone's architecture the momentum model takes (not its weights).
        size: Q, the most embeddings kept; 160 for BERT-base at batch 64 (ESimCSE run.sh `neg_size`, 2.5 batches).
        momentum: m in [0, 1); 0.995 in ESimCSE (run.sh). 0 encodes with the current weights.
    """

    def __init__(self, encoder: SentenceEncoder, size: int, momentum: float) -> None:
        super().__init__()
        self.backbone = freshly_initialized(encoder.backbone).requires_grad_(False).eval()
        self.size = size
        self.momentum = momentum
        hidden_size = encoder.backbone.config.hidden_size
        self.register_buffer("embeddings", torch.zeros(size, hidden_size))  # (Q, H): the last `filled` rows are queued
        self.filled = 0  # host-side counts (in `extra_state`): reading them never waits for the device
        self.epoch = -1

    def train(self, mode: bool = True) -> "MomentumQueue":
        """Always eval mode: the momentum model encodes without dropout, as the reference's `model.eval()`."""
        return super().train(False)

    def expect_eval_mode(self) -> None:
        """Lightning's warning at the start of training about modules in eval mode is left out when they are exactly
        this one's, in eval mode on purpose (`expect_modules_in_eval_mode`)."""
        expect_modules_in_eval_mode(sum(1 for module in self.modules() if not module.training))  # the backbone's

    def queued(self) -> Tensor:
        """The queued embeddings, (filled, H), oldest first."""
        return self.embeddings[self.size - self.filled :]

    def start_step(self, encoder: SentenceEncoder, epoch: int) -> Tensor:
        """Before a training step's loss: empty the queue if `epoch` is new, move θ_m towards the encoder's weights.

        Returns:
            The queued embeddings (filled, H), the step's extra negatives.
        """
        if epoch != self.epoch:
            self.filled, self.epoch = 0, epoch
        self.update(encoder)
        return self.queued().clone()

    @torch.no_grad()
    def update(self, encoder: SentenceEncoder) -> None:
        """θ_m ← m · θ_m + (1 - m) · θ for each parameter (the reference's `param_m * m + param * (1 - m)`)."""
        for momentum_param, param in zip(self.backbone.parameters(), encoder.backbone.parameters(), strict=True):
            momentum_param.mul_(self.momentum).add_(param.detach(), alpha=1.0 - self.momentum)

    @torch.no_grad()
    def encode(self, encoder: SentenceEncoder, tokens: dict[str, Tensor], chunk_rows: int | None = None) -> Tensor:
        """Momentum embeddings (B, H) of (B, L) token tensors, in chunks of `chunk_rows` rows (GradCache's size)."""
        rows = tokens["input_ids"].size(0)
        step = chunk_rows or rows
        chunks = [{key: value[start : start + step] for key, value in tokens.items()} for start in range(0, rows, step)]
        return torch.cat([self._encode_chunk(encoder, chunk) for chunk in chunks])

    @torch.no_grad()
    def enqueue(self, embeddings: Tensor) -> None:
        """Append (R, H) embeddings, dropping the oldest beyond the queue's size."""
        kept = torch.cat([self.queued(), embeddings.to(self.embeddings.dtype)])[-self.size :]  # (≤ Q, H)
        self.embeddings[self.size - kept.size(0) :] = kept
        self.filled = kept.size(0)

    def _encode_chunk(self, encoder: SentenceEncoder, tokens: dict[str, Tensor]) -> Tensor:
        needs_all_layers = encoder.pooler_type in POOLERS_NEEDING_ALL_LAYERS
        outputs = self.backbone(**tokens, output_hidden_states=needs_all_layers, return_dict=True)
        pooled = pool(encoder.pooler_type, tokens["attention_mask"], outputs.last_hidden_state, outputs.hidden_states)
        if encoder.mlp is not None and uses_mlp(encoder.pooler_type, encoder.mlp_only_train, training=True):
            pooled = encoder.mlp(pooled)  # the reference applies `cls.mlp` to the momentum output of `cls`
        return pooled

    def get_extra_state(self) -> dict[str, int]:
        return {"filled": self.filled, "epoch": self.epoch}

    def set_extra_state(self, state: dict[str, int]) -> None:
        self.filled, self.epoch = int(state["filled"]), int(state["epoch"])


def freshly_initialized(backbone: PreTrainedModel) -> PreTrainedModel:
    """A copy of `backbone` (its modules, dtype and device) whose every weight its model class draws anew from the
    global random state, as `AutoModel.from_config` initializes them."""
    copied = copy.deepcopy(backbone)
    fresh = dict(AutoModel.from_config(backbone.config).named_parameters())  # may hold more (the pooler cse drops)
    with torch.no_grad():
        for name, param in copied.named_parameters():
            param.copy_(fresh[name])
    return copied


def check_momentum_settings(size: int, momentum: float, do_mlm: bool) -> None:
    """One line naming the `model.*` key when the momentum queue's settings cannot be trained.

    Raises:
        InputError: a negative size, a momentum outside [0, 1), or the queue with the MLM loss (the reference drops
            the MLM term once the queue holds embeddings, so that combination has no reference behaviour).
    """
    if size < 0:
        raise InputError(f"model.momentum_queue_size: must be 0 (off) or more (ESimCSE: 160), got {size}")
    if not 0 <= momentum < 1:
        raise InputError(f"model.momentum: must be in [0, 1) (ESimCSE: 0.995), got {momentum}")
    if size and do_mlm:
        raise InputError(
            "model.momentum_queue_size: not with model.do_mlm (ESimCSE's reference drops the MLM loss once the queue "
            "holds embeddings); turn one of them off"
        )


def check_momentum_mode(size: int, mode: str, mixed: bool = False) -> None:
    """Refuse the queue for training data other than single sentences, which ESimCSE does not define it for, and for
    a mixture of datasets (`data.train_files`), whose batches keep their negatives within one dataset: the queue
    would score each batch against the batches of other datasets before it.

    Raises:
        InputError: `size` > 0 and `mode` is not `unsupervised`, or the data is `mixed`.
    """
    if size and mode != "unsupervised":
        raise InputError(
            f"model.momentum_queue_size: ESimCSE's momentum queue is defined for single sentences (unsupervised), "
            f"but the training data has {mode}; set it to 0"
        )
    if size and mixed:
        raise InputError(
            "model.momentum_queue_size: the queue would give each batch of data.train_files the negatives of the "
            "other datasets' earlier batches, where a mixture keeps in-batch negatives within one dataset; train on "
            "one data.train_file, or set it to 0"
        )
