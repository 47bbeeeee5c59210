"""PromptBERT's pooler against hand-filled templates run through `AutoModel` (kongds/Prompt-BERT, prompt_bert/models.py,
train.py `prepare_features`, evaluation.py `get_delta`)."""

import copy

import pytest
import torch
import yaml
from lightning.pytorch import Callback, Trainer
from scipy.stats import spearmanr
from trainerless import without_trainer
from transformers import AutoModel, AutoTokenizer

from cse.config.recipes import recipe_dir
from cse.data.datamodule import SimCSEDataModule
from cse.data.scored_pairs import read_scored_pairs
from cse.errors import InputError
from cse.losses.info_nce import InfoNCELoss
from cse.models.encoder import SentenceEncoder
from cse.models.prompt_pooler import PromptPooler
from cse.models.prompt_template import PromptSettings, build_prompt_pooler, template_tokens
from cse.models.simcse import SimCSE

# The tiny tokenizer knows letters, a few words and punctuation (tests/conftest.py).
TEMPLATE = "the [X] is [MASK] ."
POSITIVE = "a [X] , [MASK] ."
SENTENCES = ["a man is playing a guitar.", "the dog is in the park", "a girl"]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _words(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _hand_filled(tokenizer, template: str, sentence: str, keep: int | None = None) -> list[int]:
    """[CLS] + prefix words + the sentence's first `keep` words + suffix words (the mask token) + [SEP]."""
    before, after = template.replace("[MASK]", tokenizer.mask_token).split("[X]")
    words = _words(tokenizer, sentence)[:keep]
    return [
        tokenizer.cls_token_id,
        *_words(tokenizer, before),
        *words,
        *_words(tokenizer, after),
        tokenizer.sep_token_id,
    ]


def _disable_dropout(module: torch.nn.Module) -> torch.nn.Module:
    module.apply(lambda child: setattr(child, "p", 0.0) if isinstance(child, torch.nn.Dropout) else None)
    for config in {id(m.config): m.config for m in module.modules() if hasattr(m, "config")}.values():
        config.attention_probs_dropout_prob = 0.0
    return module


def test_template_ids_are_the_reference_prefix_and_suffix(tokenizer):
    tokens = template_tokens(TEMPLATE, tokenizer)
    the, is_, dot = _words(tokenizer, "the is .")
    assert tokens.prefix == (tokenizer.cls_token_id, the)
    assert tokens.suffix == (is_, tokenizer.mask_token_id, dot, tokenizer.sep_token_id)
    assert tokens.mask_index == 3


def _run_sh_template_ids(tokenizer, template: str) -> tuple[list[int], list[int]]:
    """kongds/Prompt-BERT train.py, transcribed: a run.sh template cut at *sent_0*, '_' read as a space, the part
    before encoded without its [SEP] (`bs`), the part after without its [CLS] (`es`)."""
    template = template.replace("*mask*", tokenizer.mask_token).replace("*sep+*", "").replace("*cls*", "")
    bs, es = (part.replace("_", " ") for part in template.replace("*sent_0*", " ").split(" "))
    return tokenizer.encode(bs)[:-1], tokenizer.encode(es)[1:]


@pytest.mark.parametrize(
    ("key", "run_sh"),
    [  # run.sh unsup-bert: TEMPLATE (view 0, evaluation) and TEMPLATE2 (--mask_embedding_sentence_different_template)
        ("prompt_template", '*cls*_This_sentence_of_"*sent_0*"_means*mask*.*sep+*'),
        ("prompt_template_positive", '*cls*_This_sentence_:_"*sent_0*"_means*mask*.*sep+*'),
    ],
)
def test_the_recipe_templates_are_the_reference_ids_for_bert_base_uncased(minilm_dir, key, run_sh):
    """all-MiniLM-L6-v2 has bert-base-uncased's vocabulary and lower-casing."""
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    template = yaml.safe_load((recipe_dir() / "unsup-promptbert-bert-base.yaml").read_text())["model"][key]
    tokens = template_tokens(template, tokenizer)
    assert (list(tokens.prefix), list(tokens.suffix)) == _run_sh_template_ids(tokenizer, run_sh)


@pytest.mark.parametrize("side", ["right", "left"])
def test_fill_under_either_padding_side_is_the_hand_filled_template_right_padded(tokenizer, side):
    pooler = PromptPooler([template_tokens(TEMPLATE, tokenizer)], tokenizer.pad_token_id)
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.padding_side = side
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    ids, mask, length, mask_position = pooler.fill(
        batch["input_ids"], batch["attention_mask"], torch.zeros(3, dtype=torch.long)
    )
    assert ids.size(1) == batch["input_ids"].size(1) - 2 + 6  # L - [CLS], [SEP] + the template's 6 tokens
    for row, sentence in enumerate(SENTENCES):
        expected = _hand_filled(tokenizer, TEMPLATE, sentence)
        padding = ids.size(1) - len(expected)
        assert ids[row].tolist() == expected + [tokenizer.pad_token_id] * padding
        assert mask[row].tolist() == [1] * len(expected) + [0] * padding
        assert length[row] == len(_words(tokenizer, sentence))
        assert mask_position[row] == expected.index(tokenizer.mask_token_id)


def test_the_sentence_is_cut_never_the_template_where_positions_end(tokenizer):
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    pooler = PromptPooler([template_tokens(TEMPLATE, tokenizer)], tokenizer.pad_token_id, max_positions=10)
    ids, mask, length, mask_position = pooler.fill(
        batch["input_ids"], batch["attention_mask"], torch.zeros(3, dtype=torch.long)
    )
    assert ids.size(1) == 10
    for row, sentence in enumerate(SENTENCES):
        expected = _hand_filled(tokenizer, TEMPLATE, sentence, keep=4)  # 10 positions - 6 template tokens
        assert ids[row, : len(expected)].tolist() == expected
        assert mask_position[row] == expected.index(tokenizer.mask_token_id)


def test_a_truncated_sentence_keeps_the_whole_template(tiny_model_dir, tokenizer):
    """The tokenizer cut at data.max_seq_length = 5 (3 words): the template is added around what is left."""
    encoder = _encoder(tiny_model_dir, tokenizer, PromptSettings(TEMPLATE)).eval()
    batch = tokenizer(SENTENCES, padding=True, truncation=True, max_length=5, return_tensors="pt")
    with torch.no_grad():
        embeddings = encoder(**batch)
        expected = torch.stack([_hand_mask_state(tiny_model_dir, tokenizer, s, keep=3) for s in SENTENCES])
    torch.testing.assert_close(embeddings, expected, rtol=0, atol=1e-6)


def _encoder(model_dir, tokenizer, settings: PromptSettings, mlp_only_train: bool = False) -> SentenceEncoder:
    backbone = AutoModel.from_pretrained(model_dir)
    return SentenceEncoder(
        backbone, "prompt", mlp_only_train, build_prompt_pooler(settings, tokenizer, backbone.config)
    )


def _hand_mask_state(model_dir, tokenizer, sentence: str, template: str = TEMPLATE, keep: int | None = None):
    """AutoModel on the hand-filled template alone (no padding): the last state at the mask token."""
    ids = _hand_filled(tokenizer, template, sentence, keep)
    hidden = AutoModel.from_pretrained(model_dir).eval()(input_ids=torch.tensor([ids])).last_hidden_state[0]
    return hidden[ids.index(tokenizer.mask_token_id)]


def _hand_template_state(model, tokenizer, template: str, length: int):
    """The reference's delta: the template with an empty sentence, the suffix at positions shifted by `length`."""
    ids = _hand_filled(tokenizer, template, "")
    prefix = len(_hand_filled(tokenizer, template.split("[X]")[0] + "[X]", "")) - 1  # [CLS] + words before [X]
    positions = [p if p < prefix else p + length for p in range(len(ids))]
    hidden = model(input_ids=torch.tensor([ids]), position_ids=torch.tensor([positions])).last_hidden_state[0]
    return hidden[ids.index(tokenizer.mask_token_id)]


@pytest.mark.parametrize("side", ["right", "left"])
def test_embedding_is_the_mask_state_of_automodel_on_the_hand_filled_template(tiny_model_dir, tokenizer, side):
    encoder = _encoder(tiny_model_dir, tokenizer, PromptSettings(TEMPLATE)).eval()
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.padding_side = side
    with torch.no_grad():
        embeddings = encoder(**tokenizer(SENTENCES, padding=True, return_tensors="pt"))
        expected = torch.stack([_hand_mask_state(tiny_model_dir, tokenizer, s) for s in SENTENCES])
    torch.testing.assert_close(embeddings, expected, rtol=0, atol=1e-6)


def test_denoised_embedding_subtracts_the_template_state_at_the_reference_positions(tiny_model_dir, tokenizer):
    settings = PromptSettings(TEMPLATE, denoising_at_inference=True)
    encoder = _encoder(tiny_model_dir, tokenizer, settings).eval()
    model = AutoModel.from_pretrained(tiny_model_dir).eval()
    with torch.no_grad():
        embeddings = encoder(**tokenizer(SENTENCES, padding=True, return_tensors="pt"))
        expected = torch.stack(
            [
                _hand_mask_state(tiny_model_dir, tokenizer, s)
                - _hand_template_state(model, tokenizer, TEMPLATE, len(_words(tokenizer, s)))
                for s in SENTENCES
            ]
        )
        undenoised = torch.stack([_hand_mask_state(tiny_model_dir, tokenizer, s) for s in SENTENCES])
    torch.testing.assert_close(embeddings, expected, rtol=0, atol=1e-6)
    assert (embeddings - undenoised).abs().max() > 1e-2


def _unsupervised_promptbert(model_dir) -> SimCSE:
    """The reference's `unsup-bert` settings: TEMPLATE and POSITIVE, template denoising, the MLP in training only."""
    return SimCSE(
        str(model_dir),
        pooler_type="prompt",
        mlp_only_train=True,
        prompt_template=TEMPLATE,
        prompt_template_positive=POSITIVE,
        template_denoising=True,
    )


def test_training_loss_uses_two_templates_denoising_and_the_mlp(tiny_model_dir, tokenizer):
    """Unsupervised PromptBERT (the reference's `unsup-bert`): view 0 in TEMPLATE, view 1 in POSITIVE, each minus its
    template's state, then the MLP, then InfoNCE; checked against AutoModel on hand-filled texts."""
    torch.manual_seed(0)
    module = _unsupervised_promptbert(tiny_model_dir)
    module = without_trainer(_disable_dropout(module).train())
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    loss = module.training_step({key: value.unsqueeze(1) for key, value in batch.items()}, 0)  # (B, 1, L)

    backbone = module.encoder.backbone
    views = []
    for template in (TEMPLATE, POSITIVE):
        states = []
        for sentence in SENTENCES:
            ids = _hand_filled(tokenizer, template, sentence)
            hidden = backbone(input_ids=torch.tensor([ids])).last_hidden_state[0, ids.index(tokenizer.mask_token_id)]
            states.append(
                hidden - _hand_template_state(backbone, tokenizer, template, len(_words(tokenizer, sentence)))
            )
        views.append(module.encoder.mlp(torch.stack(states)))
    expected = InfoNCELoss(0.05)(views[0], views[1])
    torch.testing.assert_close(loss, expected, rtol=0, atol=1e-5)
    # One template for both views gives another loss: the second template is used.
    module.encoder.prompt.templates = module.encoder.prompt.templates[:1]
    assert (module.training_step({key: value.unsqueeze(1) for key, value in batch.items()}, 0) - loss).abs() > 1e-4


def _one_step_trainer(root, **options) -> Trainer:
    """A quiet CPU trainer of one training step, writing under `root` only."""
    return Trainer(
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        default_root_dir=root,
        max_steps=1,
        **options,
    )


def _dev_spearman(backbone, tokenizer, pairs, denoised: bool) -> float:
    """STS dev Spearman of the hand-filled TEMPLATE's [MASK] state, minus the template's state when `denoised`."""
    cosines = []
    for first, second in zip(pairs.sentence1, pairs.sentence2, strict=True):
        states = []
        for sentence in (first, second):
            ids = _hand_filled(tokenizer, TEMPLATE, sentence)
            state = backbone(input_ids=torch.tensor([ids])).last_hidden_state[0, ids.index(tokenizer.mask_token_id)]
            length = len(_words(tokenizer, sentence))
            states.append(state - _hand_template_state(backbone, tokenizer, TEMPLATE, length) if denoised else state)
        cosines.append(torch.nn.functional.cosine_similarity(*states, dim=0).item())
    return spearmanr(cosines, pairs.scores).statistic


def test_fit_validates_denoised_as_the_reference_and_validate_embeds_as_its_test(
    tiny_model_dir, tokenizer, tiny_data, tmp_path
):
    """The reference picks its checkpoint by the STS-B dev score of the denoised [MASK] state (`sentemb_forward`
    under --mask_embedding_sentence_delta) of the sentences as given (prompt_bert/trainers.py `batcher`), and tests
    without the delta (evaluation.py with run.sh's eargs), "." appended to a sentence without one (its line 201)."""
    lines = tiny_data.dev_file.read_text().splitlines()
    # Every second pair loses its final periods: the dev file as given; tiny_data's own sentences are then exactly the
    # sentences the reference's test embeds (each ends in "." there).
    given = [line.replace(".\t", "\t") if index % 2 else line for index, line in enumerate(lines[1:])]
    assert all(line.split("\t")[0].endswith(".") for line in lines[1:]) and given != lines[1:]
    dev_file = tmp_path / "dev.tsv"
    dev_file.write_text("\n".join([lines[0], *given]) + "\n")
    module = _unsupervised_promptbert(tiny_model_dir)
    datamodule = SimCSEDataModule(
        str(tiny_data.train_file), dev_file=str(dev_file), tokenizer_name_or_path=str(tiny_model_dir)
    )
    trainer = _one_step_trainer(tmp_path, val_check_interval=1, num_sanity_val_steps=0)
    trainer.fit(module, datamodule)  # one step, then the validation of fit, with the weights it ends with
    fitted = trainer.callback_metrics["val/stsb_spearman"].item()
    validated = trainer.validate(module, datamodule, verbose=False)[0]["val/stsb_spearman"]

    as_given, as_tested = read_scored_pairs(dev_file), read_scored_pairs(tiny_data.dev_file)
    backbone = module.encoder.backbone.eval()
    with torch.no_grad():
        denoised, plain = (_dev_spearman(backbone, tokenizer, as_given, d) for d in (True, False))
        tested = _dev_spearman(backbone, tokenizer, as_tested, denoised=False)
    assert abs(denoised - plain) > 1e-3, "the dev set cannot tell the two embeddings apart"
    assert abs(tested - plain) > 1e-4, "the dev set cannot tell whether a period was appended"
    assert fitted == pytest.approx(denoised, abs=1e-4)
    assert validated == pytest.approx(tested, abs=1e-4)


def test_training_fills_the_template_with_the_sentence_as_given(tiny_model_dir, tokenizer, tmp_path):
    """The reference's training (train.py `prepare_features`) tokenizes each sentence as given, no "." appended."""
    sentences = ["a man is playing a guitar", "the dog is in the park", "is it a girl?", "a boy"]
    train_file = tmp_path / "train.txt"
    train_file.write_text("\n".join(sentences) + "\n")
    batches = []

    class Record(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            batches.append({key: value.clone() for key, value in batch.items()})

    datamodule = SimCSEDataModule(str(train_file), tokenizer_name_or_path=str(tiny_model_dir), batch_size=4)
    trainer = _one_step_trainer(tmp_path, callbacks=[Record()])
    trainer.fit(_unsupervised_promptbert(tiny_model_dir), datamodule)
    ids, mask = (batches[0][key].flatten(0, 1) for key in ("input_ids", "attention_mask"))  # (B, 1, L) -> (B, L)
    rows = [row[keep.bool()].tolist() for row, keep in zip(ids, mask, strict=True)]
    assert sorted(rows) == sorted(tokenizer(sentences)["input_ids"])  # the model makes the two views


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"prompt_template": TEMPLATE}, "model.prompt_template: only for model.pooler_type: prompt"),
        ({"pooler_type": "avg", "template_denoising": True}, "model.template_denoising: only for"),
        ({"pooler_type": "prompt"}, "model.prompt_template: model.pooler_type: prompt needs a template"),
        ({"pooler_type": "prompt", "prompt_template": "the [X] is"}, "must hold exactly one [X]"),
        (
            {"pooler_type": "prompt", "prompt_template": TEMPLATE, "prompt_template_positive": "[X] [X] [MASK]"},
            "model.prompt_template_positive:",
        ),
        ({"pooler_type": "prompt", "prompt_template": "the [X] is [MASK] " + "a " * 200}, "leaves no room"),
    ],
)
def test_bad_settings_are_one_line_errors(tiny_model_dir, options, message):
    with pytest.raises(InputError) as error:
        SimCSE(str(tiny_model_dir), **options)
    assert message in str(error.value) and "\n" not in str(error.value)
