"""The seeds `seed_everything` accepts: numpy's, 0 to 2**32 - 1; Lightning refuses others with a traceback."""

from cse.errors import InputError

SEED_MIN, SEED_MAX = 0, 2**32 - 1  # numpy.random.seed's range, which lightning.fabric's seed_everything checks


def check_seed(seed: int, option: str) -> int:
    """`seed` itself, or a one-line `InputError` naming `option` when numpy (and so Lightning) would refuse it."""
    if not SEED_MIN <= seed <= SEED_MAX:
        raise InputError(f"{option}: seed {seed} is outside {SEED_MIN}..{SEED_MAX}, the seeds numpy accepts")
    return seed
