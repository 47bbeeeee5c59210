"""A damaged model directory is one `error:` line naming the file, through `cse eval`, `cse encode` and `load_model`;
weights are read from safetensors only.

`pytest tests/models/test_model_directory.py -rP` lists the messages.
"""

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from cse import load_model
from cse.errors import InputError
from cse.export.directory import write_model_directory
from cse.models.encoder import SentenceEncoder

SENTENCES = ["a man is playing a guitar.", "the dog is in the park"]


@pytest.fixture(scope="module")
def exported(tiny_model_dir, tmp_path_factory) -> Path:
    torch.manual_seed(0)
    encoder = SentenceEncoder.from_pretrained(str(tiny_model_dir), "avg")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    return write_model_directory(encoder, tokenizer, tmp_path_factory.mktemp("model-directory") / "model")


def _write(name: str, content: bytes) -> Callable[[Path], None]:
    return lambda directory: (directory / name).write_bytes(content)


def _truncate(name: str, keep: float) -> Callable[[Path], None]:
    def damage(directory: Path) -> None:
        data = (directory / name).read_bytes()
        (directory / name).write_bytes(data[: int(len(data) * keep)])

    return damage


def _edit_config(**changes: object) -> Callable[[Path], None]:
    def damage(directory: Path) -> None:
        config = json.loads((directory / "config.json").read_text())
        (directory / "config.json").write_text(json.dumps({**config, **changes}))

    return damage


def _pickled_weights(directory: Path) -> None:
    (directory / "model.safetensors").rename(directory / "pytorch_model.bin")


# case: (how the copy `bad` is damaged; the error line after "error: ")
CASES = {
    "config.json cut short": (_truncate("config.json", 0.5), "model 'bad': config.json is not valid JSON (line "),
    "config.json binary": (_write("config.json", b"\xff\xfe\x00\x01"), "model 'bad': config.json is not UTF-8 text"),
    "config.json of an unknown architecture": (
        _edit_config(model_type="no-such-model"),
        "model 'bad': cannot be loaded (ValueError: ",
    ),
    "model.safetensors truncated": (
        _truncate("model.safetensors", 0.9),
        "model 'bad': model.safetensors is damaged or truncated (Error while deserializing header",
    ),
    "model.safetensors overwritten": (
        _write("model.safetensors", b"\x00" * 64),
        "model 'bad': model.safetensors is damaged or truncated",
    ),
    "tokenizer.json cut short": (_truncate("tokenizer.json", 0.5), "model 'bad': tokenizer.json is not valid JSON"),
    "cse_config.json cut short": (_truncate("cse_config.json", 0.5), "model 'bad': cse_config.json is not valid JSON"),
    "cse_config.json without its embedding": (
        _write("cse_config.json", b"{}"),
        "model 'bad': cse_config.json has no valid 'embedding' (None); say how to pool with --pooler",
    ),
    "pickled weights only": (
        _pickled_weights,
        "model 'bad': no .safetensors weights (pytorch_model.bin is pickled, which can run code on loading)",
    ),
}


@pytest.fixture
def workdir(exported, inputs_dir) -> Path:
    """The working directory: a copy of the export as `bad`, sentences, and a SentEval dir with STS-B dev."""
    shutil.copytree(exported, inputs_dir / "bad")
    return inputs_dir


COMMANDS = {
    "eval": ["eval", "bad", "--tasks", "stsb", "--mode", "dev", "--data-dir", "senteval"],
    "encode": ["encode", "bad", "sentences.txt", "embeddings.npy"],
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", CASES)
def test_a_damaged_model_directory_is_one_error_line(case, command, workdir, run_cse):
    damage, expected = CASES[case]
    damage(workdir / "bad")
    code, _, err = run_cse(COMMANDS[command])
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1, err
    assert "Traceback" not in err
    print(f"{case} | {command} | {errors[0]}")
    assert errors[0].startswith(f"error: {expected}")
    assert not (workdir / "embeddings.npy").exists()


@pytest.mark.parametrize("case", CASES)
def test_load_model_raises_the_same_input_error(case, workdir):
    damage, expected = CASES[case]
    damage(workdir / "bad")
    with pytest.raises(InputError) as error:
        load_model("bad", device="cpu")
    assert str(error.value).startswith(expected) and "\n" not in str(error.value)


def test_the_undamaged_copy_loads(workdir, exported):
    assert load_model("bad", device="cpu").encode(SENTENCES).shape == (2, 32)
