"""The seed range check agrees with numpy, whose seeds `seed_everything` accepts."""

import numpy as np
import pytest
from lightning.fabric.utilities.seed import seed_everything

from cse.config.seed_range import check_seed
from cse.errors import InputError


def _numpy_accepts(seed: int) -> bool:
    try:
        np.random.RandomState(seed)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("seed", [0, 1, 2**32 - 1])
def test_seeds_numpy_accepts_pass_and_seed_everything_takes_them(seed):
    assert _numpy_accepts(seed)
    assert check_seed(seed, "--seed") == seed
    assert seed_everything(seed) == seed


@pytest.mark.parametrize("seed", [-3, -1, 2**32, 4294967296 * 2])
def test_seeds_numpy_refuses_are_one_line_errors_naming_the_option(seed):
    assert not _numpy_accepts(seed)
    with pytest.raises(InputError, match=rf"^--seeds 1,{seed}: seed {seed} is outside 0\.\.4294967295") as error:
        check_seed(seed, f"--seeds 1,{seed}")
    assert "\n" not in str(error.value)
