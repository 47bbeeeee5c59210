"""`last.ckpt` of a finished run holds the state after its final step."""

from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _step(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=False)["global_step"]


@pytest.mark.parametrize(
    ("val_check_interval", "overrides"),
    [
        # A learning rate too small to change the dev ranking: the validation of step 2 is the only best (ties are
        # not), the periodic save of step 3 the newest last.ckpt, the validations of steps 4 and 5 save nothing.
        (2, ["--periodic_checkpoint.every_n_train_steps", "3", "--model.learning_rate", "1.0e-12"]),
        (5, ["--periodic_checkpoint.every_n_train_steps", "3"]),  # the final validation is a new best
        (5, ["--periodic_checkpoint.every_n_train_steps", "3", "--data.dev_file", "null"]),
    ],
    ids=["final-validation-not-best", "final-validation-best", "no-dev-set"],
)
def test_last_checkpoint_is_the_final_step(
    val_check_interval, overrides, shrunk_recipe_args, run_cse, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    args = shrunk_recipe_args("quickstart", *overrides, max_steps=5, val_check_interval=val_check_interval)
    assert run_cse(args).code == 0
    (last,) = tmp_path.rglob("last.ckpt")
    assert _step(last) == 5
