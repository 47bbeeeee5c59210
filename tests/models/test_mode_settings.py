"""Settings the training data's mode makes useless: refused (no learning at all) or warned about (ignored)."""

import inspect

import pytest
import torch

from cse.errors import InputError
from cse.models.mode_settings import check_settings_for_mode, has_dropout
from cse.models.simcse import SimCSE

DEFAULTS = {name: param.default for name, param in inspect.signature(SimCSE.__init__).parameters.items()}


def _settings(**changes) -> dict:
    return {key: value for key, value in DEFAULTS.items() if key != "self"} | changes


@pytest.mark.parametrize(
    ("mode", "changes", "ignored"),
    [
        ("unsupervised", {}, []),
        ("triplets", {"hard_negative_weight": 1.0, "temp": 0.1}, []),
        ("unsupervised", {"hard_negative_weight": 1.0}, ["hard_negative_weight"]),
        ("pairs", {"hard_negative_alpha": 2.0, "cosent_scale": 10.0}, ["cosent_scale", "hard_negative_alpha"]),
        (
            "scored",
            {"temp": 0.1, "gather_across_devices": False, "scored_loss": "cosine_mse"},
            ["gather_across_devices", "temp"],
        ),
    ],
)
def test_settings_without_effect_are_named(mode, changes, ignored):
    warnings = check_settings_for_mode(_settings(**changes), DEFAULTS, mode, batch_size=8, gathered_processes=1)
    assert warnings == [f"model.{key}: has no effect on {mode} training data; it is ignored" for key in ignored]


@pytest.mark.parametrize("mode", ["unsupervised", "pairs", "triplets"])
def test_one_example_without_other_processes_is_refused(mode):
    with pytest.raises(InputError, match="data.batch_size: 1 example per batch gives InfoNCE no in-batch negatives"):
        check_settings_for_mode(_settings(), DEFAULTS, mode, batch_size=1, gathered_processes=1)
    # Gathered from 4 processes, each anchor still has 3 in-batch negatives.
    assert check_settings_for_mode(_settings(), DEFAULTS, mode, batch_size=1, gathered_processes=4) == []


def test_cosent_needs_two_pairs_and_cosine_mse_does_not():
    with pytest.raises(InputError, match="CoSENT ranks the pairs of a batch against each other"):
        check_settings_for_mode(_settings(), DEFAULTS, "scored", batch_size=1, gathered_processes=1)
    settings = _settings(scored_loss="cosine_mse")
    assert (
        check_settings_for_mode(settings, DEFAULTS, "scored", batch_size=1, gathered_processes=1)
        == ["model.scored_loss: has no effect on scored training data; it is ignored"][:0]
    )


@pytest.mark.parametrize("mode", ["unsupervised", "pairs", "triplets", "scored"])
def test_a_model_without_dropout_is_warned_about_for_unsupervised_data_only(mode):
    """Only unsupervised SimCSE takes its positive pair from two dropout masks; labelled data bring their own."""
    settings = _settings(model_name_or_path="m")
    warnings = check_settings_for_mode(
        settings, DEFAULTS, mode, batch_size=8, gathered_processes=1, encoder_has_dropout=False
    )
    expected = "model.model_name_or_path: 'm' drops nothing in training (every dropout probability in its config is 0"
    assert [warning[: len(expected)] for warning in warnings] == ([expected] if mode == "unsupervised" else [])
    assert check_settings_for_mode(settings, DEFAULTS, mode, batch_size=8, gathered_processes=1) == []


def test_has_dropout_sees_any_dropout_layer_that_drops():
    assert has_dropout(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.1)))
    assert not has_dropout(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.0)))
    assert not has_dropout(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("mode", ["unsupervised", "triplets", "scored"])
def test_accumulated_batches_compared_within_themselves_are_warned_about(mode):
    warnings = check_settings_for_mode(
        _settings(), DEFAULTS, mode, batch_size=64, gathered_processes=1, accumulate_grad_batches=4
    )
    assert warnings == [
        "trainer.accumulate_grad_batches: 4 sums the gradients of 4 batches of 64, each compared only within itself, "
        "not one batch of 256; for that, set data.batch_size 256 and model.mini_batch_size 64 (GradCache: the same "
        "memory)"
    ]


@pytest.mark.parametrize(
    ("accumulate", "mode", "scored_loss"), [(1, "unsupervised", "cosent"), (4, "scored", "cosine_mse")]
)
def test_no_accumulation_or_a_per_pair_loss_is_not_warned_about(accumulate, mode, scored_loss):
    settings = _settings(scored_loss=scored_loss)
    assert (
        check_settings_for_mode(
            settings, DEFAULTS, mode, batch_size=64, gathered_processes=1, accumulate_grad_batches=accumulate
        )
        == []
    )
