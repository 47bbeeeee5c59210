"""Settings the training data's mode makes useless: refused (no learning at all) or warned about (ignored)."""

import inspect

import pytest

from cse.errors import InputError
from cse.models.mode_settings import check_settings_for_mode
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
