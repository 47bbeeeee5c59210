"""Checkpoints are read without running code from them, and a file that is not a usable checkpoint is one `error:`
line naming it, through `cse export`, `cse eval`, `cse encode` and `load_model` alike, with nothing written.

`pytest tests/test_checkpoint_file.py -rP` lists the messages.
"""

import re
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from cse import load_model
from cse.errors import InputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SENTENCES = ["a man is playing a guitar.", "the dog is in the park", "a girl"]


@pytest.fixture
def workdir(fitted_run, inputs_dir) -> Path:
    """The working directory: the run's last.ckpt as `real.ckpt`, sentences, and a SentEval dir with STS-B dev."""
    shutil.copy(fitted_run / "checkpoints" / "last.ckpt", inputs_dir / "real.ckpt")
    return inputs_dir


class RunsCode:
    """Unpickling it calls `exec`, which writes the file `ran` in the working directory: any code could run."""

    def __reduce__(self):
        return exec, ("open('ran', 'w').write('code from the checkpoint ran')",)


def _real(directory: Path) -> bytes:
    return (directory / "real.ckpt").read_bytes()


def _damaged(record: str) -> Callable[[Path], bytes]:
    """The real checkpoint with bytes flipped in its pickle, or in its largest tensor: still a complete zip archive."""

    def make(directory: Path) -> bytes:
        data = bytearray(_real(directory))
        with zipfile.ZipFile(directory / "real.ckpt") as archive:
            members = [info for info in archive.infolist() if re.search(record, info.filename)]
        largest = max(members, key=lambda info: info.file_size)
        offset = largest.header_offset + 512  # past the local header and torch's alignment padding: in the data
        data[offset : offset + 8] = bytes(byte ^ 0xFF for byte in data[offset : offset + 8])
        return bytes(data)

    return make


def _saved(content: object) -> Callable[[Path], bytes]:
    def make(directory: Path) -> bytes:
        torch.save(content, directory / "saved.tmp")
        return (directory / "saved.tmp").read_bytes()

    return make


def _without(key: str) -> Callable[[Path], bytes]:
    def make(directory: Path) -> bytes:
        checkpoint = torch.load(directory / "real.ckpt", weights_only=True)
        del checkpoint[key]
        return _saved(checkpoint)(directory)

    return make


def _with_payload(directory: Path) -> bytes:
    checkpoint = torch.load(directory / "real.ckpt", weights_only=True)
    checkpoint["hyper_parameters"]["payload"] = RunsCode()
    return _saved(checkpoint)(directory)


def _with_wrong_weights(directory: Path) -> bytes:
    checkpoint = torch.load(directory / "real.ckpt", weights_only=True)
    key = next(key for key in checkpoint["state_dict"] if key.endswith("word_embeddings.weight"))
    checkpoint["state_dict"][key] = torch.zeros(3, 3)
    return _saved(checkpoint)(directory)


# case: (the bytes of bad.ckpt, or None for a folder named so, or "missing"; what the error line says about it)
CASES = {
    "missing": ("missing", "checkpoint bad.ckpt: no such file"),
    "a directory": (None, "checkpoint bad.ckpt: is a directory; expected a checkpoint file"),
    "empty": (lambda d: b"", "checkpoint bad.ckpt: file is empty"),
    "text": (lambda d: b"not a checkpoint\n", "checkpoint bad.ckpt: not a PyTorch checkpoint"),
    "truncated to half": (lambda d: _real(d)[: len(_real(d)) // 2], "checkpoint bad.ckpt: truncated"),
    "truncated by 100 bytes": (lambda d: _real(d)[:-100], "checkpoint bad.ckpt: truncated"),
    "bytes flipped in its pickle": (_damaged(r"data\.pkl$"), "checkpoint bad.ckpt: damaged (Bad CRC-32 for file"),
    "bytes flipped in a tensor": (_damaged(r"/data/\d+$"), "checkpoint bad.ckpt: damaged (Bad CRC-32 for file"),
    "a zip of something else": (lambda d: _zip_of_text(d), "checkpoint bad.ckpt: not a PyTorch checkpoint"),
    "a tensor, not a dict": (_saved(torch.zeros(2)), "checkpoint bad.ckpt: not a Lightning checkpoint"),
    "no hyperparameters": (_without("hyper_parameters"), "checkpoint bad.ckpt: not a cse checkpoint"),
    "no backbone assets": (_without("cse_backbone"), "checkpoint bad.ckpt: not a cse checkpoint (no cse_backbone)"),
    "weights of another shape": (_with_wrong_weights, "checkpoint bad.ckpt: its weights do not fit its backbone"),
    "an object whose unpickling runs code": (
        _with_payload,
        "checkpoint bad.ckpt: refused: loading it would create or call builtins.exec, which can run code",
    ),
}


def _zip_of_text(directory: Path) -> bytes:
    with zipfile.ZipFile(directory / "saved.tmp", "w") as archive:
        archive.writestr("notes.txt", "hello")
    return (directory / "saved.tmp").read_bytes()


def _write_case(directory: Path, case: str) -> None:
    make, _ = CASES[case]
    if make is None:
        (directory / "bad.ckpt").mkdir()
    elif make != "missing":
        (directory / "bad.ckpt").write_bytes(make(directory))
        (directory / "saved.tmp").unlink(missing_ok=True)


COMMANDS = {
    "export": ["export", "bad.ckpt", "exported"],
    "eval": ["eval", "bad.ckpt", "--tasks", "stsb", "--mode", "dev", "--data-dir", "senteval"],
    "encode": ["encode", "bad.ckpt", "sentences.txt", "embeddings.npy"],
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", CASES)
def test_a_bad_checkpoint_is_one_error_line(case, command, workdir, run_cse):
    _write_case(workdir, case)
    before = sorted(path.name for path in workdir.iterdir())
    code, out, err = run_cse(COMMANDS[command])
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1, err
    assert "Traceback" not in err
    print(f"{case} | {command} | {errors[0]}")
    assert errors[0].startswith(f"error: {CASES[case][1]}")
    assert sorted(path.name for path in workdir.iterdir()) == before, "nothing written (and no code ran)"


@pytest.mark.parametrize("case", CASES)
def test_load_model_raises_the_same_input_error(case, workdir):
    _write_case(workdir, case)
    with pytest.raises(InputError) as error:
        load_model("bad.ckpt", device="cpu")
    assert str(error.value).startswith(CASES[case][1]) and "\n" not in str(error.value)
    assert not (workdir / "ran").exists()


def test_the_payload_would_run_code_if_unpickled(workdir):
    """The control for the refusal above: the payload is live, `torch.load(weights_only=False)` runs it."""
    _write_case(workdir, "an object whose unpickling runs code")
    torch.load("bad.ckpt", weights_only=False)
    assert (workdir / "ran").read_text() == "code from the checkpoint ran"


def test_a_real_fit_checkpoint_still_loads_everywhere(fitted_run, workdir, run_cse):
    code, out, err = run_cse(["export", "real.ckpt", "exported"])
    assert code == 0 and out.strip() == "exported: exported", err
    code, out, err = run_cse(["eval", "real.ckpt", "--tasks", "stsb", "--mode", "dev", "--data-dir", "senteval"])
    assert code == 0 and "STSBenchmark" in out, err
    code, out, err = run_cse(["encode", "real.ckpt", "sentences.txt", "embeddings.npy"])
    assert code == 0, err
    from_checkpoint = load_model("real.ckpt", device="cpu").encode(SENTENCES)
    np.testing.assert_array_equal(np.load("embeddings.npy"), from_checkpoint)
    np.testing.assert_allclose(load_model("exported", device="cpu").encode(SENTENCES), from_checkpoint, atol=1e-6)
    best_model = load_model(fitted_run / "best_model", device="cpu")  # what `cse fit` exported
    assert best_model.dimension == from_checkpoint.shape[1]


@pytest.mark.parametrize(
    "case", ["truncated by 100 bytes", "bytes flipped in its pickle", "an object whose unpickling runs code"]
)
def test_resuming_from_a_bad_last_checkpoint_is_one_error_line(case, workdir, shrunk_recipe_args, run_cse):
    """`--ckpt_path last` finds a run's last.ckpt that a kill while saving cut short, say. (Given a file, LightningCLI
    itself reads it first, with `weights_only=True`: safe, but a damaged file is its traceback.)"""
    _write_case(workdir, case)
    last = workdir / "runs" / "quickstart" / "version_0" / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    (workdir / "bad.ckpt").rename(last)
    before = sorted(path.relative_to(workdir).as_posix() for path in workdir.rglob("*"))
    code, _, err = run_cse(shrunk_recipe_args("quickstart", "--ckpt_path", "last", max_steps=2))
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    print(f"{case} | fit --ckpt_path last | {errors[0]}")
    assert errors[0].startswith(f"error: {CASES[case][1].replace('bad.ckpt', str(last.relative_to(workdir)))}")
    assert sorted(path.relative_to(workdir).as_posix() for path in workdir.rglob("*")) == before, "nothing written"
