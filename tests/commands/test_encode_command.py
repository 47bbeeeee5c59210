import os
from pathlib import Path

import numpy as np
import pytest
import torch
from sentences import LINES_WITH_SEPARATORS
from transformers import AutoTokenizer

from cse.export.directory import write_model_directory
from cse.inference.api import load_model
from cse.models.encoder import SentenceEncoder

SENTENCES = ["a man is playing a guitar.", "the dog is in the park", "a girl", "a\tboy is on the dog"]


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir, tmp_path_factory):
    torch.manual_seed(0)
    encoder = SentenceEncoder.from_pretrained(str(tiny_model_dir), "avg_first_last")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    return write_model_directory(encoder, tokenizer, tmp_path_factory.mktemp("encode") / "model")


@pytest.mark.parametrize("normalize", [False, True])
def test_encode_writes_the_apis_embeddings(normalize, model_dir, tmp_path, run_cse):
    (tmp_path / "in.txt").write_text("\n".join(SENTENCES) + "\n")
    flags = ["--normalize"] if normalize else []
    code, out, err = run_cse(["encode", str(model_dir), str(tmp_path / "in.txt"), str(tmp_path / "out.npy"), *flags])
    assert code == 0, err
    array = np.load(tmp_path / "out.npy")
    assert array.shape == (4, 32) and array.dtype == np.float32
    expected = load_model(model_dir, device="cpu").encode(SENTENCES, normalize=normalize)
    np.testing.assert_array_equal(array, expected)
    norms = np.linalg.norm(array, axis=1)
    assert np.allclose(norms, 1.0, atol=1e-6) == normalize
    assert out.strip() == f"wrote {tmp_path / 'out.npy'}: 4 x 32 float32"
    assert {path.name for path in tmp_path.iterdir()} == {"in.txt", "out.npy"}  # no temporary file left


@pytest.mark.parametrize(
    ("input_text", "output", "extra", "message"),
    [
        ("a\n\nb\n", "out.npy", [], "in.txt line 2: blank line; put one sentence on every line"),
        (None, "out.npy", [], "input {tmp}/in.txt: no such file"),
        ("a\n", "out.txt", [], "output {tmp}/out.txt: must end in .npy"),
        ("a\n", "missing/out.npy", [], "directory {tmp}/missing does not exist"),
        ("a\n", "out.npy", ["--batch-size", "0"], "--batch-size: must be at least 1, got 0"),
        ("a\rb\rc\r", "out.npy", [], "in.txt: its lines end in a lone carriage return (\\r, classic Mac OS)"),
    ],
)
def test_bad_input_is_one_error_line(input_text, output, extra, message, model_dir, tmp_path, run_cse):
    if input_text is not None:
        (tmp_path / "in.txt").write_text(input_text)
    code, _, err = run_cse(["encode", str(model_dir), str(tmp_path / "in.txt"), str(tmp_path / output), *extra])
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message.format(tmp=tmp_path) in lines[0], err
    assert not (tmp_path / output).exists()


def test_a_model_that_does_not_say_how_to_pool_needs_pooler(tiny_model_dir, tmp_path, run_cse):
    (tmp_path / "in.txt").write_text("a dog\n")
    args = ["encode", str(tiny_model_dir), str(tmp_path / "in.txt"), str(tmp_path / "out.npy")]
    code, _, err = run_cse(args)
    assert code == 2 and "say how to pool with --pooler" in err
    code, _, err = run_cse([*args, "--pooler", "avg"])
    assert code == 0, err


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_row_i_is_line_i_whatever_the_line_holds(line_end, model_dir, tmp_path, run_cse):
    (tmp_path / "in.txt").write_bytes(("\ufeff" + line_end.join(LINES_WITH_SEPARATORS) + line_end).encode("utf-8"))
    code, out, err = run_cse(["encode", str(model_dir), str(tmp_path / "in.txt"), str(tmp_path / "out.npy")])
    assert code == 0, err
    array = np.load(tmp_path / "out.npy")
    assert array.shape[0] == (tmp_path / "in.txt").read_bytes().count(b"\n") == len(LINES_WITH_SEPARATORS)
    model = load_model(model_dir, device="cpu")
    for row, line in zip(array, LINES_WITH_SEPARATORS, strict=True):  # each line encoded alone, as the reference
        np.testing.assert_allclose(row, model.encode([line])[0], rtol=1e-5, atol=1e-6)


def test_an_output_link_is_written_through_and_kept(model_dir, tmp_path, run_cse, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("in.txt").write_text("\n".join(SENTENCES) + "\n")
    Path("store").mkdir()
    Path("store/embeddings.npy").write_bytes(b"an earlier file")
    Path("out.npy").symlink_to("store/embeddings.npy")
    code, out, err = run_cse(["encode", str(model_dir), "in.txt", "out.npy"])
    assert code == 0, err
    assert Path("out.npy").is_symlink() and os.readlink("out.npy") == "store/embeddings.npy"
    np.testing.assert_array_equal(
        np.load("store/embeddings.npy"), load_model(model_dir, device="cpu").encode(SENTENCES)
    )
    assert out.strip() == "wrote out.npy: 4 x 32 float32"
    assert sorted(map(str, Path().rglob("*"))) == ["in.txt", "out.npy", "store", "store/embeddings.npy"]


def _link(target: str):
    return lambda: Path("out.npy").symlink_to(target)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Path("out.npy").mkdir(), "output out.npy: is a directory"),
        (_link("folder"), "output out.npy: is a directory (where the symbolic link leads: {tmp}/folder)"),
        (_link("nowhere/x.npy"), "output out.npy: directory {tmp}/nowhere does not exist (where the symbolic link"),
        (_link("out.npy"), "output out.npy: is a loop of symbolic links; write the embeddings to another file"),
        (_link("in.txt"), "output out.npy: is an input of this run; write the embeddings to another file"),
    ],
    ids=["directory", "link to a directory", "link into no folder", "link loop", "link to the input"],
)
def test_output_problems_are_found_before_the_model_is_loaded(make, message, model_dir, tmp_path, run_cse, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("in.txt").write_text("a dog\n")
    Path("folder").mkdir()
    make()
    monkeypatch.setattr("cse.commands.encode.load_model", lambda *args, **kwargs: pytest.fail("the model was loaded"))
    code, out, err = run_cse(["encode", str(model_dir), "in.txt", "out.npy"])
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {message.format(tmp=tmp_path)}"), err
    assert Path("in.txt").read_text() == "a dog\n" and not list(Path("folder").iterdir())
