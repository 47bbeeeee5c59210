"""PromptBERT's templates (Jiang et al., 2022, "PromptBERT: Improving BERT Sentence Embeddings with Prompts", §4):
checked settings, and the token ids that go before and after the sentence.

A template is text with one `[X]` (the sentence) and one `[MASK]`, e.g. `This sentence : "[X]" means [MASK] .`.
Its ids follow the reference code (kongds/Prompt-BERT, train.py `prepare_features`): the prefix is
`tokenizer.encode(text before [X])[:-1]` ([CLS] + its words; stripped of spaces, as the reference does for RoBERTa),
the suffix `tokenizer.encode(text after [X])[1:]` (its words + [SEP]), the sentence's own ids go between them.
"""

from dataclasses import asdict, dataclass

from transformers import PretrainedConfig, PreTrainedTokenizerBase

from cse.errors import InputError
from cse.models.loading import position_limit
from cse.models.prompt_pooler import PromptPooler, TemplateTokens

SENTENCE_SLOT = "[X]"
MASK_SLOT = "[MASK]"
PROMPT_POOLER = "prompt"


@dataclass(frozen=True)
class PromptSettings:
    """The prompt settings of a model (`model.prompt_template`, ...), as the checkpoint and the export keep them.

    Attributes:
        template: the template of the anchor view in training and of every sentence at inference.
        positive_template: the template of the positive (and hard negative) view in training; None: `template`.
        denoising: subtract the template's own [MASK] state in training (template denoising, §5).
        denoising_at_inference: subtract it at inference too.
    """

    template: str
    positive_template: str | None = None
    denoising: bool = False
    denoising_at_inference: bool = False

    def templates(self) -> list[str]:
        """Template 0 (anchor, inference) and, when it differs, template 1 (positive and hard negative views)."""
        second = self.positive_template
        return [self.template] if second is None or second == self.template else [self.template, second]

    def to_dict(self) -> dict:
        return asdict(self)


def prompt_settings(
    pooler_type: str,
    template: str | None,
    positive_template: str | None,
    denoising: bool,
    denoising_at_inference: bool,
) -> PromptSettings | None:
    """The checked settings of `model.pooler_type: prompt`; None for other poolers, which must leave them unset."""
    if pooler_type != PROMPT_POOLER:
        for key, value in (
            ("prompt_template", template),
            ("prompt_template_positive", positive_template),
            ("template_denoising", denoising),
            ("template_denoising_at_inference", denoising_at_inference),
        ):
            if value not in (None, False):
                raise InputError(f"model.{key}: only for model.pooler_type: prompt, not '{pooler_type}' ({value!r})")
        return None
    if template is None:
        raise InputError(
            "model.prompt_template: model.pooler_type: prompt needs a template with one [X] and one [MASK], "
            "e.g. 'This sentence : \"[X]\" means [MASK] .'"
        )
    for key, value in (("prompt_template", template), ("prompt_template_positive", positive_template)):
        if value is not None and (value.count(SENTENCE_SLOT) != 1 or value.count(MASK_SLOT) != 1):
            raise InputError(f"model.{key}: {value!r} must hold exactly one [X] (the sentence) and one [MASK]")
    return PromptSettings(template, positive_template, denoising, denoising_at_inference)


def sentence_as_tested(text: str) -> str:
    """`text` as the reference's test puts it in the template: whitespace runs made one space, ends stripped, and "."
    appended unless it is empty or ends in `.`, `?`, `"` or `'`.

    kongds/Prompt-BERT (commit 690ba6e), evaluation.py:201, `batcher` under `--mask_embedding_sentence` with a
    template: `if len(s) > 0 and s[-1] not in '.?"\\'': s += '.'`, where `s` is SentEval's whitespace split of the
    line joined by one space (SentEval/senteval/sts.py:42, evaluation.py:192). Only that test does it: neither
    train.py's `prepare_features` nor its trainer's dev evaluation (prompt_bert/trainers.py `batcher`), so cse applies
    it in `cse eval`, `cse validate|test`, `cse encode` and `load_model`, not in `cse fit` (training or validation).
    """
    sentence = " ".join(text.split())
    return sentence + "." if sentence and sentence[-1] not in ".?\"'" else sentence


def template_tokens(template: str, tokenizer: PreTrainedTokenizerBase) -> TemplateTokens:
    """The ids of `template` for `tokenizer`, as the reference builds them (see the module docstring)."""
    if tokenizer.mask_token is None:
        raise InputError(f"model.prompt_template: the tokenizer has no mask token to put in {template!r}")
    if len(tokenizer("")["input_ids"]) != 2:
        raise InputError(
            "model.pooler_type: prompt needs a tokenizer that adds one special token before a sentence and one after "
            "([CLS] ... [SEP] or <s> ... </s>)"
        )
    before, after = (part.replace(MASK_SLOT, tokenizer.mask_token) for part in template.split(SENTENCE_SLOT))
    prefix = tuple(tokenizer(before.strip())["input_ids"][:-1])  # [CLS] + words, its [SEP] dropped
    suffix = tuple(tokenizer(after)["input_ids"][1:])  # words + [SEP], its [CLS] dropped
    ids = prefix + suffix
    if ids.count(tokenizer.mask_token_id) != 1:
        raise InputError(f"model.prompt_template: {template!r} does not tokenize to exactly one mask token")
    return TemplateTokens(prefix, suffix, ids.index(tokenizer.mask_token_id), template)


def build_prompt_pooler(
    settings: PromptSettings, tokenizer: PreTrainedTokenizerBase, config: PretrainedConfig
) -> PromptPooler:
    """The `PromptPooler` of `settings` for this tokenizer and backbone config."""
    templates = [template_tokens(template, tokenizer) for template in settings.templates()]
    try:
        return PromptPooler(
            templates,
            tokenizer.pad_token_id,
            position_limit(config),
            settings.denoising,
            settings.denoising_at_inference,
        )
    except ValueError as error:
        raise InputError(f"model.prompt_template: {error}") from None


def checkpoint_prompt_pooler(
    hparams: dict, tokenizer: PreTrainedTokenizerBase, config: PretrainedConfig
) -> PromptPooler | None:
    """The `PromptPooler` of a checkpoint's hyperparameters (None for other poolers, or checkpoints from before it)."""
    settings = prompt_settings(
        hparams["pooler_type"],
        hparams.get("prompt_template"),
        hparams.get("prompt_template_positive"),
        hparams.get("template_denoising", False),
        hparams.get("template_denoising_at_inference", False),
    )
    return None if settings is None else build_prompt_pooler(settings, tokenizer, config)
