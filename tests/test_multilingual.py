"""A multilingual model on non-Latin text, end to end through the `cse` entry point: the shipped recipe
`sup-xlmr-multilingual-scored` trains a tiny XLM-R (a unigram tokenizer trained on generated Korean) on Korean scored
pairs in KLUE-STS's jsonl layout (the score nested under `labels.label`), and `cse eval` scores the export on a Korean
scored set. Each check is against an independent computation: the tokenizer called without truncation, the jsonl read
directly, CoSENT summed pair by pair, Spearman of mean-pooled `AutoModel` states."""

import json
import math
import shutil
from pathlib import Path
from typing import NamedTuple

import pytest
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from transformers import AutoModel, AutoTokenizer

from cse.cli import main
from cse.models.simcse import SimCSE

RECIPE = "sup-xlmr-multilingual-scored"
MAX_SEQ_LENGTH = 16  # short enough that the long generated sentences are truncated
COSENT_SCALE = 20.0  # the recipe's (the signature default)


class KoreanRun(NamedTuple):
    """What one `cse fit` of the recipe on the Korean data recorded: per training step the batch and the arguments and
    result of the loss, and the run folder."""

    batches: list[dict[str, torch.Tensor]]
    losses: list[tuple[torch.Tensor, str, torch.Tensor]]  # (embeddings (B, 2, H), mode, loss)
    run_dir: Path


@pytest.fixture(scope="module")
def korean_run(shrunk_recipe_args, tiny_xlmr_dir, korean_data, tmp_path_factory) -> KoreanRun:
    directory = tmp_path_factory.mktemp("korean-run")
    batches, losses = [], []
    training_step, loss = SimCSE.training_step, SimCSE._loss

    def recording_step(self, batch, batch_idx):
        batches.append({key: value.detach().clone() for key, value in batch.items()})
        return training_step(self, batch, batch_idx)

    def recording_loss(self, embeddings, batch, mode, *more):  # more: e.g. ESimCSE's queued negatives
        result = loss(self, embeddings, batch, mode, *more)
        losses.append((embeddings.detach().double(), mode, result.detach().double()))
        return result

    args = shrunk_recipe_args(
        RECIPE,
        "--data.train_file",
        str(korean_data.train_file),
        "--data.dev_file",
        str(korean_data.dev_file),
        "--data.max_seq_length",
        str(MAX_SEQ_LENGTH),
        "--data.num_workers",
        "0",  # batches collated in this process, where the test reads them
        "--trainer.logger.init_args.save_dir",
        str(directory / "runs"),
        model_dir=tiny_xlmr_dir,
        cache_dir=directory / "cache",
        batch_size=8,
        max_steps=4,
        num_sanity_val_steps=0,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SimCSE, "training_step", recording_step)
        patch.setattr(SimCSE, "_loss", recording_loss)
        main(args)
    torch.set_num_threads(threads)
    return KoreanRun(batches, losses, directory / "runs" / RECIPE / "version_0")


def _jsonl_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _truncated(tokenizer, sentence: str) -> tuple[int, ...]:
    """The ids training should see: the whole tokenization, cut to MAX_SEQ_LENGTH with its </s> kept last."""
    ids = tokenizer(sentence)["input_ids"]  # no truncation
    return tuple(ids if len(ids) <= MAX_SEQ_LENGTH else [*ids[: MAX_SEQ_LENGTH - 1], tokenizer.eos_token_id])


def _rows_seen(batch: dict[str, torch.Tensor]) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Each example of a (B, 2, L) batch as the token ids of its two sentences, padding removed."""
    rows = []
    for ids, mask in zip(batch["input_ids"], batch["attention_mask"], strict=True):
        rows.append(tuple(tuple(view[view_mask.bool()].tolist()) for view, view_mask in zip(ids, mask, strict=True)))
    return rows


def test_max_seq_length_counts_subword_tokens(korean_run, tiny_xlmr_dir, korean_data):
    tokenizer = AutoTokenizer.from_pretrained(tiny_xlmr_dir)
    expected = {}
    for row in _jsonl_rows(korean_data.train_file):
        for sentence in (row["sentence1"], row["sentence2"]):
            expected[_truncated(tokenizer, sentence)] = sentence
    seen = [ids for batch in korean_run.batches for pair in _rows_seen(batch) for ids in pair]

    assert seen and all(ids in expected for ids in seen), "a sentence was tokenized or truncated otherwise"
    assert all(ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id for ids in seen)
    truncated = [ids for ids in seen if len(tokenizer(expected[ids])["input_ids"]) > MAX_SEQ_LENGTH]
    assert truncated, "the generated data should hold sentences longer than max_seq_length"
    for ids in truncated:  # max_seq_length subword pieces with <s> and </s>, of a sentence of fewer words
        assert len(ids) == MAX_SEQ_LENGTH and len(expected[ids].split()) < MAX_SEQ_LENGTH
    assert max(map(len, seen)) == MAX_SEQ_LENGTH
    assert "<unk>" not in tokenizer.convert_ids_to_tokens([token for ids in seen for token in ids])


def test_cosent_on_the_nested_labels_label_scores(korean_run, tiny_xlmr_dir, korean_data):
    """Every step's loss is CoSENT (summed here pair by pair) on the cosines of the encoded pairs, with the gold
    scores read from `labels.label` and mapped from the recipe's score_range [0, 5] onto [0, 1]."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_xlmr_dir)
    gold = {}
    for row in _jsonl_rows(korean_data.train_file):
        key = (_truncated(tokenizer, row["sentence1"]), _truncated(tokenizer, row["sentence2"]))
        gold.setdefault(key, set()).add(row["labels"]["label"] / 5.0)

    assert len(korean_run.batches) == len(korean_run.losses) == 4
    for batch, (embeddings, mode, loss) in zip(korean_run.batches, korean_run.losses, strict=True):
        assert mode == "scored"
        scores = []
        for pair, score in zip(_rows_seen(batch), batch["score"].tolist(), strict=True):
            assert any(math.isclose(score, label, rel_tol=1e-6) for label in gold[pair])
            scores.append(score)
        cosines = F.cosine_similarity(embeddings[:, 0], embeddings[:, 1], dim=-1).tolist()  # (B, 2, H) -> (B,)
        terms = [
            math.exp(COSENT_SCALE * (cosines[j] - cosines[i]))
            for i in range(len(scores))
            for j in range(len(scores))
            if scores[i] > scores[j]
        ]
        assert terms, "a batch with a single score level teaches CoSENT nothing"
        assert loss.item() == pytest.approx(math.log(1 + sum(terms)), rel=1e-4)


def test_cse_eval_on_a_korean_scored_set(korean_run, korean_data, tmp_path, run_cse):
    """`cse eval` of the export on Korean pairs in SentEval's STS-B place: Spearman of the mean-pooled embedding that
    the export's cse_config.json names, against AutoModel's states pooled here."""
    model_dir = korean_run.run_dir / "best_model"
    assert json.loads((model_dir / "cse_config.json").read_text())["embedding"] == "avg"
    stsb = tmp_path / "korean-eval" / "STS" / "STSBenchmark"
    stsb.mkdir(parents=True)
    shutil.copy(korean_data.dev_file, stsb / "sts-dev.csv")

    code, out, err = run_cse(
        ["eval", str(model_dir), "--tasks", "stsb", "--mode", "dev", "--data-dir", str(tmp_path / "korean-eval")]
        + ["--json", str(tmp_path / "scores.json")]
    )

    assert code == 0, err
    reported = json.loads((tmp_path / "scores.json").read_text())["scores"]["STSBenchmark"]
    lines = korean_data.dev_file.read_text(encoding="utf-8").splitlines()[1:]
    first, second, gold = zip(*(line.split("\t") for line in lines), strict=True)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()

    def mean_pooled(sentences) -> torch.Tensor:
        batch = tokenizer(list(sentences), padding=True, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**batch).last_hidden_state.double()  # (N, L, H)
        mask = batch["attention_mask"].unsqueeze(-1).double()  # (N, L, 1)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1)  # (N, H)

    cosines = F.cosine_similarity(mean_pooled(first), mean_pooled(second), dim=-1)
    assert reported == pytest.approx(100 * spearmanr(cosines.numpy(), [float(g) for g in gold])[0], abs=1e-6)
    assert f"{reported:.2f}" in out
