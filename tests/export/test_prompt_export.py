"""A PromptBERT model exported: cse_config.json keeps the template, `cse.load_model` gives the trained embedding (equal
to AutoModel's [MASK] state on the hand-filled template, its sentence with "." appended as the reference's
evaluation.py:201 does), and no sentence-transformers files are written."""

import json

import torch
from transformers import AutoModel, AutoTokenizer

from cse.export.directory import write_model_directory
from cse.inference.api import load_model
from cse.models.simcse import SimCSE

TEMPLATE = "the [X] is [MASK] ."
SENTENCES = ["a man is playing a guitar.", "the dog is in the park", "a girl"]
TESTED = ["a man is playing a guitar.", "the dog is in the park.", "a girl."]  # by hand: "." unless it ends in one


def test_export_round_trip_gives_the_trained_embedding(tiny_model_dir, tmp_path):
    torch.manual_seed(0)
    module = SimCSE(
        str(tiny_model_dir),
        pooler_type="prompt",
        mlp_only_train=True,
        prompt_template=TEMPLATE,
        prompt_template_positive="a [X] , [MASK] .",
        template_denoising=True,
        template_denoising_at_inference=True,
    )
    encoder = module.encoder.eval()
    with torch.no_grad():
        encoder.backbone.embeddings.word_embeddings.weight.add_(0.1)  # "trained": differs from the base model
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    out = write_model_directory(encoder, tokenizer, tmp_path / "export")

    config = json.loads((out / "cse_config.json").read_text())
    assert config["pooler_type"] == "prompt" and config["embedding"] == "prompt"
    assert config["prompt"] == {"template": TEMPLATE, "template_denoising": True}
    assert not (out / "modules.json").exists(), "sentence-transformers would pool the plain sentence"

    loaded = load_model(out, device="cpu").encode(SENTENCES, convert_to="torch")
    with torch.no_grad():
        expected = encoder(**tokenizer(TESTED, padding=True, return_tensors="pt"))
        # By hand on the exported weights: the [MASK] state of the filled template minus the template's own.
        model = AutoModel.from_pretrained(out).eval()
        hand = []
        for sentence in TESTED:
            words = tokenizer(sentence, add_special_tokens=False)["input_ids"]
            the, is_, dot = tokenizer("the is .", add_special_tokens=False)["input_ids"]
            cls, sep, mask = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.mask_token_id
            filled = [cls, the, *words, is_, mask, dot, sep]
            state = model(input_ids=torch.tensor([filled])).last_hidden_state[0, filled.index(mask)]
            template = [cls, the, is_, mask, dot, sep]
            positions = [0, 1] + [p + len(words) for p in range(2, 6)]
            output = model(input_ids=torch.tensor([template]), position_ids=torch.tensor([positions]))
            hand.append(state - output.last_hidden_state[0, 3])
    torch.testing.assert_close(loaded, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(loaded, torch.stack(hand), rtol=0, atol=1e-6)


def test_model_card_says_plainly_that_cse_is_needed(tiny_model_dir):
    from cse.export.model_card import _usage

    module = SimCSE(str(tiny_model_dir), pooler_type="prompt", prompt_template=TEMPLATE)
    usage = "\n".join(_usage(module.encoder, "my-model", []))
    assert "**This model needs `cse` to load.**" in usage and "SentenceTransformer(" not in usage
    assert "from cse import load_model" in usage
