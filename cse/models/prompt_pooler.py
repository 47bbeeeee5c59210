"""PromptBERT's pooler (Jiang et al., 2022, §4-5): the sentence inside a template, embedded as the [MASK]'s last state,
minus the template's own [MASK] state (template denoising). Follows kongds/Prompt-BERT, prompt_bert/models.py
(`cl_forward`, `sentemb_forward`).

Pure torch: the backbone is passed in. Its input is ordinary tokenized sentences, [CLS] s [SEP] padded on either side
and truncated by the tokenizer; each row is rebuilt as prefix + s + suffix, right-padded as the reference pads, its
sentence cut (never the template) where the model's positions end.
"""

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class TemplateTokens:
    """One template's ids: `prefix` ([CLS] + words before [X]), `suffix` (words after [X] + [SEP]), and `mask_index`,
    the [MASK]'s index in `prefix + suffix` (the template with an empty sentence)."""

    prefix: tuple[int, ...]
    suffix: tuple[int, ...]
    mask_index: int
    text: str = ""


class PromptPooler(nn.Module):
    """Fill templates, take the [MASK] state, subtract the template's: (R, L) token ids -> (R, H).

    Args:
        templates: template 0 (anchor, inference) and optionally template 1 (other training views).
        pad_token_id: the id that pads rebuilt rows.
        max_positions: most tokens the backbone takes (`cse.models.loading.position_limit`); None: no limit.
        denoising: subtract the template's [MASK] state in training (the reference's `--mask_embedding_sentence_delta`).
        denoising_at_inference: subtract it in eval mode too (the reference evaluates its unsupervised models without).
    """

    def __init__(
        self,
        templates: list[TemplateTokens],
        pad_token_id: int,
        max_positions: int | None = None,
        denoising: bool = False,
        denoising_at_inference: bool = False,
    ) -> None:
        super().__init__()
        self.templates = templates
        self.template_text = templates[0].text  # the inference template, for the export
        self.pad_token_id = pad_token_id
        self.max_positions = max_positions
        self.denoising = denoising
        self.denoising_at_inference = denoising_at_inference
        prefix_max = max(len(t.prefix) for t in templates)
        suffix_max = max(len(t.suffix) for t in templates)
        # Template tables, padded: (T, P_max), (T, S_max); lengths and [MASK] indices (T,). Not saved: rebuilt from the
        # template text and the tokenizer.
        self.register_buffer("prefix_ids", _table([t.prefix for t in templates], prefix_max), persistent=False)
        self.register_buffer("suffix_ids", _table([t.suffix for t in templates], suffix_max), persistent=False)
        self.register_buffer("prefix_len", torch.tensor([len(t.prefix) for t in templates]), persistent=False)
        self.register_buffer("suffix_len", torch.tensor([len(t.suffix) for t in templates]), persistent=False)
        self.register_buffer("mask_index", torch.tensor([t.mask_index for t in templates]), persistent=False)
        self.longest_template = max(len(t.prefix) + len(t.suffix) for t in templates)  # tokens, without a sentence
        if max_positions is not None and self.longest_template >= max_positions:
            raise ValueError(
                f"a template of {self.longest_template} tokens leaves no room for a sentence in {max_positions}"
            )

    def forward(
        self,
        backbone: nn.Module,
        input_ids: Tensor,
        attention_mask: Tensor,
        template: Tensor | None = None,
        denoise: bool = False,
    ) -> Tensor:
        """Embeddings (R, H) of (R, L) tokenized sentences; `template` (R,) picks each row's template (None: 0).

        `denoise`: subtract the template's state in eval mode too, as the reference's dev evaluation during training
        (`sentemb_forward`, whose STS-B score picks its checkpoint) does whenever training does.
        """
        used = 1 if template is None else len(self.templates)  # inference: template 0 only
        if template is None:
            template = torch.zeros(input_ids.size(0), dtype=torch.long, device=input_ids.device)
        ids, mask, length, mask_position = self.fill(input_ids, attention_mask, template)
        hidden = backbone(input_ids=ids, attention_mask=mask, return_dict=True).last_hidden_state  # (R, L', H)
        rows = torch.arange(ids.size(0), device=ids.device)
        states = hidden[rows, mask_position]  # (R, L', H) -> (R, H)
        if denoise or self.denoising_at_inference or (self.training and self.denoising):
            deltas, offsets = self.template_states(backbone, ids.size(1), used)  # (ΣN_t, H), (used,)
            states = states - deltas[offsets[template] + length]
        return states

    def view_templates(self, size: int, views: int) -> Tensor:
        """(size·views,) template of each row of a flattened (B, k, L) training batch: 0 for view 0 (the anchor), the
        positive's for views 1 and 2, as the reference's `cl_forward` (its hard negative takes the positive's)."""
        positive = len(self.templates) - 1
        per_view = torch.arange(views, device=self.prefix_len.device).clamp(max=1) * positive  # (k,): 0, t, t, ...
        return per_view.repeat(size)  # (k,) -> (B·k,): row k·i + v is view v of example i

    def fill(
        self, input_ids: Tensor, attention_mask: Tensor, template: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Rows rebuilt as prefix + sentence + suffix, right-padded.

        Args:
            input_ids, attention_mask: (R, L), each row [CLS] s [SEP] padded on either side.
            template: (R,) template index of each row.

        Returns:
            ids and attention mask (R, L'), L' = min(L - 2 + the longest template, max_positions); the sentence length n
            (R,) kept (cut where positions end); the [MASK] position (R,).
        """
        size, length = input_ids.shape
        prefix, suffix = self.prefix_len[template], self.suffix_len[template]  # (R,)
        width = length - 2 + self.longest_template
        width = width if self.max_positions is None else min(width, self.max_positions)
        real = attention_mask.bool()
        first = real.long().argmax(dim=1)  # (R,) index of [CLS]: 0 under right padding
        sentence = (real.sum(dim=1) - 2).clamp(min=0)
        sentence = torch.minimum(sentence, width - prefix - suffix)  # cut the sentence, never the template
        j = torch.arange(width, device=input_ids.device).unsqueeze(0)  # (1, L')
        at_sentence = j - prefix.unsqueeze(1)  # (R, L'): index in the sentence
        at_suffix = at_sentence - sentence.unsqueeze(1)  # (R, L'): index in the suffix
        from_prefix = self.prefix_ids[template].gather(1, j.clamp(max=self.prefix_ids.size(1) - 1).expand(size, -1))
        source = (first.unsqueeze(1) + 1 + at_sentence).clamp(0, length - 1)  # skip [CLS]
        from_sentence = input_ids.gather(1, source)
        from_suffix = self.suffix_ids[template].gather(1, at_suffix.clamp(0, self.suffix_ids.size(1) - 1))
        pad = torch.full_like(from_prefix, self.pad_token_id)
        in_sentence = (at_sentence >= 0) & (at_sentence < sentence.unsqueeze(1))
        in_suffix = (at_suffix >= 0) & (at_suffix < suffix.unsqueeze(1))
        ids = torch.where(j < prefix.unsqueeze(1), from_prefix, pad)
        ids = torch.where(in_sentence, from_sentence, ids)
        ids = torch.where(in_suffix, from_suffix, ids)
        mask = (j < (prefix + sentence + suffix).unsqueeze(1)).to(attention_mask.dtype)
        mask_index = self.mask_index[template]
        mask_position = torch.where(mask_index < prefix, mask_index, mask_index + sentence)
        return ids, mask, sentence, mask_position

    def template_states(self, backbone: nn.Module, width: int, used: int) -> tuple[Tensor, Tensor]:
        """The [MASK] state of each template with an empty sentence, for every sentence length n that fits in `width`.

        As the reference's `get_delta`: the template alone, its suffix at the positions it has after n sentence tokens
        (explicit position ids 0, 1, ..., P - 1, P + n, ..., counted from 0 for every model type, as the reference),
        in the backbone's current mode (dropout and gradients in training, as `cl_forward`). P is each template's own
        prefix length; the reference shifts the second template's positions after the first's prefix, the same
        thing when both prefixes have one length (as run.sh's two BERT templates: 4 tokens after [CLS] each).

        Returns:
            The states (ΣN_t, H), N_t = width - P_t - S_t + 1 rows for template t (row n: length n), and the offset of
            each template's first row (used,), computed on the device as the states are.
        """
        states = []
        for index in range(used):
            tokens = self.templates[index]
            prefix, suffix = self.prefix_ids[index, : len(tokens.prefix)], self.suffix_ids[index, : len(tokens.suffix)]
            ids = torch.cat([prefix, suffix])  # (P + S,)
            count = width - ids.numel() + 1  # lengths 0 ... width - P - S
            positions = torch.arange(ids.numel(), device=ids.device).repeat(count, 1)  # (N, P + S)
            lengths = torch.arange(count, device=ids.device).unsqueeze(1)  # (N, 1)
            positions[:, len(tokens.prefix) :] += lengths
            hidden = backbone(
                input_ids=ids.repeat(count, 1), position_ids=positions, return_dict=True
            ).last_hidden_state
            states.append(hidden[:, tokens.mask_index])  # (N, P + S, H) -> (N, H)
        counts = width + 1 - self.prefix_len[:used] - self.suffix_len[:used]  # (used,): N_t
        return torch.cat(states), counts.cumsum(0) - counts


def _table(rows: list[tuple[int, ...]], width: int) -> Tensor:
    """Rows of ids padded with 0 to `width`: (T, width)."""
    return torch.tensor([list(row) + [0] * (width - len(row)) for row in rows], dtype=torch.long)
