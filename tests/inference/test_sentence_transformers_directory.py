"""A sentence-transformers directory that is not a cse export embeds as `SentenceTransformer(dir).encode` does: its
pooling, truncation and `Normalize` read from its files; what cse cannot apply is one `error:` line naming it."""

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer
from transformers import AutoTokenizer

from cse import load_model
from cse.inference.loading import load_encoder

SENTENCES = ["a man is playing a guitar.", "the dog", "a girl is in the park " * 6, "the boy is on the dog"]
TYPE = "sentence_transformers.models.{}"


def _module(index: int, name: str, path: str = "") -> dict:
    return {"idx": index, "name": str(index), "path": path, "type": TYPE.format(name)}


def _st_directory(
    source: Path,
    directory: Path,
    pooling: dict,
    extra: tuple[str, ...] = ("Normalize",),
    transformer: dict | None = None,
) -> Path:
    """A copy of `source` with sentence-transformers' files as its older releases write them (as all-MiniLM-L6-v2)."""
    shutil.copytree(source, directory)
    modules = [_module(0, "Transformer"), _module(1, "Pooling", "1_Pooling")]
    modules += [_module(index, name, f"{index}_{name}") for index, name in enumerate(extra, start=2)]
    (directory / "modules.json").write_text(json.dumps(modules))
    (directory / "1_Pooling").mkdir()
    (directory / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, **pooling}))
    settings = {"max_seq_length": 8, "do_lower_case": False, **(transformer or {})}
    (directory / "sentence_bert_config.json").write_text(json.dumps(settings))
    return directory


MEAN = {"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}


def _reference(directory: Path) -> np.ndarray:
    return SentenceTransformer(str(directory), device="cpu").encode(SENTENCES, batch_size=2)


@pytest.mark.parametrize(
    ("pooling", "extra"),
    [(MEAN, ("Normalize",)), ({"pooling_mode": "cls"}, ()), ({"pooling_mode": ["mean"]}, ())],
    ids=["mean-normalize", "cls", "mean-list"],
)
def test_a_tiny_directory_embeds_as_sentence_transformers(tiny_model_dir, tmp_path, pooling, extra):
    directory = _st_directory(tiny_model_dir, tmp_path / "st", pooling, extra)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert len(tokenizer(SENTENCES[2])["input_ids"]) > 8  # truncated by max_seq_length, not by the model's 128
    expected = _reference(directory)
    np.testing.assert_allclose(load_model(directory, device="cpu").encode(SENTENCES), expected, atol=1e-5, rtol=0)
    norms = np.linalg.norm(expected, axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5) == ("Normalize" in extra)


def test_minilm_encode_is_sentence_transformers_encode(minilm_dir, tmp_path, run_cse, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lines = ["A man is playing a guitar.", " ".join(["The committee met again on Tuesday to discuss the budget."] * 40)]
    assert len(AutoTokenizer.from_pretrained(str(minilm_dir))(lines[1])["input_ids"]) > 256  # past max_seq_length
    Path("in.txt").write_text("\n".join(lines) + "\n")
    code, _, err = run_cse(["encode", str(minilm_dir), "in.txt", "out.npy"])  # no --pooler: the directory says
    assert code == 0, err
    expected = SentenceTransformer(str(minilm_dir), device="cpu").encode(lines)
    np.testing.assert_allclose(np.load("out.npy"), expected, atol=1e-5, rtol=0)


def _rewrite(directory: Path, name: str, **changes: object) -> None:
    path = directory / name
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


# case: (pooling, extra modules, how the directory is changed after, the error line after "error: model 'st': ")
REFUSALS = {
    "Dense": (MEAN, ("Dense",), None, "modules.json lists Dense ('2_Dense', sentence_transformers.models.Dense)"),
    "WeightedLayerPooling": (
        MEAN,
        (),
        lambda d: (d / "modules.json").write_text(
            json.dumps([_module(0, "Transformer"), _module(1, "WeightedLayerPooling", "1_W"), _module(2, "Pooling")])
        ),
        "modules.json lists WeightedLayerPooling ('1_W', sentence_transformers.models.WeightedLayerPooling)",
    ),
    "Normalize before Pooling": (
        MEAN,
        (),
        lambda d: (d / "modules.json").write_text(
            json.dumps([_module(0, "Transformer"), _module(1, "Normalize", "1_N"), _module(2, "Pooling", "1_Pooling")])
        ),
        "modules.json has no Pooling module right after the Transformer",
    ),
    "custom module": (
        MEAN,
        (),
        lambda d: (d / "modules.json").write_text(
            json.dumps([_module(0, "Transformer"), _module(1, "Pooling", "1_Pooling"), {"path": "x", "type": "my.X"}])
        ),
        "modules.json lists my.X ('x', my.X), which cse cannot apply",
    ),
    "max pooling": (
        {"pooling_mode_max_tokens": True},
        (),
        None,
        "1_Pooling/config.json pools by max, which cse has no pooler for",
    ),
    "concatenated pooling": (
        {"pooling_mode": ["cls", "mean"]},
        (),
        None,
        "1_Pooling/config.json pools by cls+mean, which cse has no pooler for",
    ),
    "lowercasing": (
        MEAN,
        (),
        lambda d: _rewrite(d, "sentence_bert_config.json", do_lower_case=True),
        "sentence_bert_config.json: do_lower_case true lowercases every sentence first",
    ),
    "tokenizer arguments": (
        MEAN,
        (),
        lambda d: _rewrite(d, "sentence_bert_config.json", tokenizer_args={"add_prefix_space": True}),
        "sentence_bert_config.json: tokenizer_args add_prefix_space change the tokenizer",
    ),
    "default prompt": (
        MEAN,
        (),
        lambda d: (d / "config_sentence_transformers.json").write_text(
            json.dumps({"prompts": {"query": "query: "}, "default_prompt_name": "query"})
        ),
        "config_sentence_transformers.json: default_prompt_name 'query' puts a prompt before every sentence",
    ),
    "pooling config cut short": (
        MEAN,
        (),
        lambda d: (d / "1_Pooling" / "config.json").write_text('{"pooling_mode": '),
        "1_Pooling/config.json is not valid JSON (line 1",
    ),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_what_cse_cannot_apply_is_one_error_line(case, tiny_model_dir, tmp_path, monkeypatch, run_cse):
    pooling, extra, change, message = REFUSALS[case]
    monkeypatch.chdir(tmp_path)
    directory = _st_directory(tiny_model_dir, tmp_path / "st", pooling, extra)
    if change is not None:
        change(directory)
    Path("in.txt").write_text("a dog\n")
    code, _, err = run_cse(["encode", "st", "in.txt", "out.npy"])
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith(f"error: model 'st': {message}"), err
    assert not Path("out.npy").exists()


def test_a_given_pooler_wins_with_a_warning(tiny_model_dir, tmp_path, caplog):
    directory = _st_directory(tiny_model_dir, tmp_path / "st", {"pooling_mode_max_tokens": True})
    with caplog.at_level(logging.INFO):
        model = load_model(directory, "cls_before_pooler", device="cpu")
    said = [record.getMessage() for record in caplog.records if record.getMessage().startswith("warning:")]
    assert said == [
        f"warning: model '{directory}': --pooler cls_before_pooler, where 1_Pooling/config.json pools by max: "
        "embedding with cls_before_pooler, unlike sentence-transformers"
    ]
    # The rest of the directory still applies: [CLS] of the first 8 tokens, normalized.
    _rewrite(directory, "1_Pooling/config.json", pooling_mode_max_tokens=False, pooling_mode_cls_token=True)
    np.testing.assert_allclose(model.encode(SENTENCES), _reference(directory), atol=1e-5, rtol=0)


def test_a_given_max_length_wins_with_a_warning(tiny_model_dir, tmp_path, caplog):
    directory = _st_directory(tiny_model_dir, tmp_path / "st", MEAN)
    with caplog.at_level(logging.INFO):
        _, tokenizer = load_encoder(directory, max_length=5)
    assert tokenizer.model_max_length == 5
    said = [record.getMessage() for record in caplog.records if record.getMessage().startswith("warning:")]
    assert said == [
        f"warning: model '{directory}': --max-length 5, where sentence_bert_config.json's max_seq_length is 8: "
        "truncating at 5, unlike sentence-transformers"
    ]
    caplog.clear()
    with caplog.at_level(logging.INFO):
        _, tokenizer = load_encoder(directory)
    assert tokenizer.model_max_length == 8 and not caplog.records


HUB_ID = "cse-tests/tiny-st"
REPO = Path(__file__).resolve().parents[2]
REFERENCE = """
import sys
import numpy as np
from sentence_transformers import SentenceTransformer
sentences = open("in.txt").read().splitlines()
np.save("st.npy", SentenceTransformer(sys.argv[1], device="cpu").encode(sentences))
"""


def _hub_cache(tiny_model_dir: Path, cache: Path, hub_id: str) -> Path:
    """A Hugging Face hub cache holding `hub_id` as a download leaves it (huggingface_hub's documented layout:
    `models--ORG--NAME/refs/main` naming the snapshot `snapshots/<commit>/`), the snapshot a tiny
    sentence-transformers model."""
    repo = cache / f"models--{hub_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    _st_directory(tiny_model_dir, repo / "snapshots" / commit, MEAN)
    return cache


def test_a_hub_id_embeds_as_sentence_transformers_from_the_cache_offline(tiny_model_dir, tmp_path):
    """cse read modules.json and its modules' files for local directories only: a cached hub id needed `--pooler`,
    and its truncation (max_seq_length 8) and Normalize were lost. Both libraries run offline on the same cache."""
    cache = _hub_cache(tiny_model_dir, tmp_path / "hub", HUB_ID)
    (tmp_path / "in.txt").write_text("\n".join(SENTENCES) + "\n")
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    for script in (f"from cse.cli import main; main(['encode', '{HUB_ID}', 'in.txt', 'cse.npy'])", REFERENCE):
        done = subprocess.run(
            [sys.executable, "-c", script, HUB_ID], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
    expected = np.load(tmp_path / "st.npy")
    assert np.allclose(np.linalg.norm(expected, axis=1), 1.0, atol=1e-5), "the cached Normalize module applied"
    np.testing.assert_allclose(np.load(tmp_path / "cse.npy"), expected, atol=1e-5, rtol=0)
