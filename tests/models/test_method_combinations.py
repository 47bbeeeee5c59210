"""SimCSE++, ESimCSE's queue, PromptBERT, TSDAE: each alone is accepted, any two together one line naming both keys."""

import itertools

import pytest

from cse.errors import InputError
from cse.models.simcse import SimCSE

METHODS = {
    "off_dropout_negatives": {"off_dropout_negatives": True},
    "dimension_contrast_weight": {"dimension_contrast_weight": 0.1},
    "momentum_queue_size": {"momentum_queue_size": 8},
    "pooler_type": {"pooler_type": "prompt", "prompt_template": "the [X] is [MASK] ."},
    "objective": {"objective": "tsdae", "pooler_type": "cls_before_pooler"},
}


@pytest.mark.parametrize("key", list(METHODS))
def test_each_method_alone_is_accepted(tiny_model_dir, key):
    model = SimCSE(str(tiny_model_dir), **METHODS[key])
    assert model.hparams[key] == METHODS[key][key]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pair
        for pair in itertools.combinations(METHODS, 2)
        if {"off_dropout_negatives", "dimension_contrast_weight"} != set(pair)
    ],
)
def test_two_methods_together_are_refused_naming_both_keys(tiny_model_dir, first, second):
    with pytest.raises(InputError) as error:
        SimCSE(str(tiny_model_dir), **(METHODS[second] | METHODS[first]))
    message = str(error.value)
    assert "\n" not in message and "not defined together" in message
    assert f"model.{first}" in message or f"model.{second}" in message
    named = {key for key in METHODS if f"model.{key}" in message}
    assert len(named) == 2, message


@pytest.mark.parametrize(
    ("setting", "switch", "on"),
    [
        ({"momentum": 0.9}, "momentum_queue_size: 0", {"momentum_queue_size": 8}),
        ({"tsdae_deletion_ratio": 0.3}, "objective: contrastive", METHODS["objective"]),
        ({"mlm_weight": 0.5}, "do_mlm: false", {"do_mlm": True}),
        ({"mlm_probability": 0.3}, "do_mlm: false", {"do_mlm": True}),
    ],
)
def test_a_method_setting_without_its_method_is_refused(tiny_model_dir, tiny_mlm_dir, setting, switch, on):
    [(key, value)] = setting.items()
    with pytest.raises(InputError) as error:
        SimCSE(str(tiny_model_dir), **setting)
    assert str(error.value).startswith(f"model.{key}: {value} has no effect with model.{switch} (its method is off)")
    model = SimCSE(str(tiny_mlm_dir if "do_mlm" in on else tiny_model_dir), **setting, **on)
    assert model.hparams[key] == value


@pytest.mark.parametrize("setting", [{"temp": 0.1}, {"hard_negative_weight": 1.0}, {"scored_loss": "cosine_mse"}])
def test_a_contrastive_setting_with_tsdae_is_refused(tiny_model_dir, setting):
    [(key, value)] = setting.items()
    with pytest.raises(InputError) as error:
        SimCSE(str(tiny_model_dir), **setting, **METHODS["objective"])
    assert str(error.value) == (
        f"model.{key}: {value} has no effect with model.objective: tsdae (its method is off); set model.objective: "
        f"contrastive to use it, or leave model.{key} out"
    )
    assert SimCSE(str(tiny_model_dir), **setting).hparams[key] == value
