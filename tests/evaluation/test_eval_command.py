"""End-to-end: `cse eval` through the `cse` entry point on the tiny model and a SentEval directory the tests write."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from scipy.stats import pearsonr, spearmanr
from transformers import AutoModel, AutoTokenizer

from cse.commands.evaluate import select_tasks

STS_HEADERS = ["STS12", "STS13", "STS14", "STS15", "STS16", "STSBenchmark", "SICKRelatedness"]


class MeanPooledModel:
    """The reference: `AutoModel` over all sentences in one padded batch, mean of the real tokens' states."""

    def __init__(self, model_dir, sentences: list[str]):
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModel.from_pretrained(model_dir).eval()
        unique = sorted(set(sentences))
        batch = tokenizer(unique, padding=True, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**batch).last_hidden_state.double()  # (N, L, H)
        mask = batch["attention_mask"].unsqueeze(-1).double()  # (N, L, 1)
        self.embeddings = dict(zip(unique, (hidden * mask).sum(dim=1) / mask.sum(dim=1), strict=True))

    def cosines(self, rows: list[tuple[str, str, float | None]]) -> tuple[list[float], list[float]]:
        """Cosine and gold score of each scored row."""
        cosines, golds = [], []
        for first, second, gold in rows:
            if gold is not None:
                u, v = self.embeddings[first], self.embeddings[second]
                cosines.append(float(u @ v / (u.norm() * v.norm())))
                golds.append(gold)
        return cosines, golds


def _cells(table_line: str) -> list[str]:
    return [cell.strip() for cell in table_line.strip("|").split("|")] if table_line.startswith("|") else []


def _sentences(senteval_files) -> list[str]:
    return [
        text for subsets in senteval_files.sts.values() for rows in subsets.values() for row in rows for text in row[:2]
    ]


def test_sts_test_mode_prints_the_paper_table_and_writes_json(tiny_model_dir, senteval_files, tmp_path, run_cse):
    out_file = tmp_path / "eval.json"
    data_dir = senteval_files.root.parent  # SentEval's data/ with downstream/ inside
    code, out, err = run_cse(
        ["eval", str(tiny_model_dir), "--pooler", "avg", "--data-dir", str(data_dir), "--json", str(out_file)]
    )
    assert code == 0, err

    reference = MeanPooledModel(tiny_model_dir, _sentences(senteval_files))
    expected, expected_subsets = {}, {}
    for task in STS_HEADERS:
        split = "test" if task in ("STSBenchmark", "SICKRelatedness") else None
        subsets = {split: senteval_files.sts[task][split]} if split else senteval_files.sts[task]
        all_cosines, all_golds = [], []
        for subset, rows in subsets.items():
            cosines, golds = reference.cosines(rows)
            expected_subsets[task, subset] = (100 * spearmanr(cosines, golds)[0], 100 * pearsonr(cosines, golds)[0])
            all_cosines += cosines
            all_golds += golds
        expected[task] = 100 * spearmanr(all_cosines, all_golds)[0]  # one Spearman over the concatenation
    printed = [float(f"{expected[task]:.2f}") for task in STS_HEADERS]
    expected["Avg."] = round(sum(printed) / len(printed), 2)

    report = json.loads(out_file.read_text())
    assert list(report["scores"]) == [*STS_HEADERS, "Avg."]
    for task, value in expected.items():
        assert report["scores"][task] == pytest.approx(value, abs=1e-6), task
    for (task, subset), (spearman, pearson) in expected_subsets.items():
        figures = report["sts"][task]["subsets"][subset]
        assert figures["spearman"] == pytest.approx(spearman, abs=1e-6)
        # float32 cosines (cse) against float64 ones of float32 states (the reference), each padded its own way: up to
        # 3.5e-4 points apart with any CPU kernels (ATEN_CPU_CAPABILITY avx512, avx2, default). STS14 OnWN correlates
        # at only -0.27 points, where 3.3e-5 points was 1.2e-4 of it: the bound is absolute. Other pairs move points.
        assert figures["pearson"] == pytest.approx(pearson, abs=2e-3)
    assert report["sts"]["STS15"]["subsets"]["answers-forums"]["pairs"] == 6  # the unscored pair is left out
    assert report["transfer_scores"] == {} and report["mode"] == "test"

    lines = out.splitlines()
    assert lines[0] == "------ test ------"
    header = next(line for line in lines if _cells(line)[:1] == ["STS12"])
    assert _cells(header) == [*STS_HEADERS, "Avg."]
    assert _cells(lines[lines.index(header) + 2]) == [f"{expected[task]:.2f}" for task in expected]
    assert any(line.split()[:2] == ["STS14", "tweet-news"] for line in lines)  # per-subset figures
    assert any(line.split()[:2] == ["STS12", "all"] for line in lines)


def test_dev_mode_reports_dev_splits_and_transfer_dev_accuracy(tiny_model_dir, senteval_files, tmp_path, run_cse):
    out_file = tmp_path / "eval.json"
    args = ["eval", str(tiny_model_dir), "--pooler", "avg", "--mode", "dev", "--data-dir", str(senteval_files.root)]
    # MR stands for CR, SUBJ and MPQA: the same reader and protocol (their files are read in test_transfer_tasks).
    code, out, err = run_cse([*args, "--tasks", "mrpc,sickr,trec,stsb,sst2,mr", "--json", str(out_file)])
    assert code == 0, err
    report = json.loads(out_file.read_text())
    assert list(report["scores"]) == ["STSBenchmark", "SICKRelatedness", "Avg."]  # the paper's order
    reference = MeanPooledModel(tiny_model_dir, _sentences(senteval_files))
    for task in ("STSBenchmark", "SICKRelatedness"):
        cosines, golds = reference.cosines(senteval_files.sts[task]["dev"])
        assert report["scores"][task] == pytest.approx(100 * spearmanr(cosines, golds)[0], abs=1e-6)
    transfer = ["MR", "SST2", "TREC", "MRPC"]
    assert list(report["transfer_scores"]) == [*transfer, "Avg."]
    for task in transfer:
        assert report["transfer_scores"][task] == report["transfer"][task]["devacc"]  # dev accuracy in dev mode
        assert 0.0 <= report["transfer"][task]["acc"] <= 100.0
    assert report["transfer"]["TREC"]["ndev"] == 60 and report["transfer"]["MRPC"]["ntest"] == 20
    lines = out.splitlines()
    assert lines[0] == "------ dev ------"
    header = next(line for line in lines if _cells(line)[:1] == ["MR"])
    assert _cells(header) == [*transfer, "Avg."]


def test_task_selection():
    transfer = ["MR", "CR", "SUBJ", "MPQA", "SST2", "TREC", "MRPC"]
    assert select_tasks(None, None, "test") == STS_HEADERS
    assert select_tasks(None, "sts", "dev") == ["STSBenchmark", "SICKRelatedness"]
    assert select_tasks(None, "full", "dev") == ["STSBenchmark", "SICKRelatedness", *transfer]
    assert select_tasks(None, "transfer", "test") == transfer
    # Paper order whatever the order given; SentEval's names work as well.
    assert select_tasks("SICKRelatedness, sts12,mr,STS12", None, "test") == ["STS12", "SICKRelatedness", "MR"]


def test_lightning_checkpoint_is_evaluated_with_its_training_pooler(tiny_model_dir, senteval_files, tmp_path, run_cse):
    from lightning.pytorch import Trainer

    from cse.models.simcse import SimCSE

    trainer = Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(SimCSE(str(tiny_model_dir), pooler_type="avg"))
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    args = ["--mode", "dev", "--tasks", "stsb", "--data-dir", str(senteval_files.root)]
    reports = []
    for model in (["eval", str(tmp_path / "model.ckpt")], ["eval", str(tiny_model_dir), "--pooler", "avg"]):
        code, _, err = run_cse([*model, *args, "--json", str(tmp_path / "eval.json")])
        assert code == 0, err
        reports.append(json.loads((tmp_path / "eval.json").read_text())["scores"])
    assert reports[0] == reports[1]


def test_errors_are_one_line_and_name_the_file(tiny_model_dir, senteval_files, tmp_path, run_cse):
    root = tmp_path / "data"
    shutil.copytree(senteval_files.root, root)
    model = str(tiny_model_dir)
    cases = [
        (["--data-dir", str(tmp_path / "nowhere")], "data dir", "no such directory"),
        (["--data-dir", str(root), "--tasks", "sts12,sts99"], "--tasks", "unknown task sts99"),
        (["--data-dir", str(root), "--mode", "dev", "--tasks", "stsb,sts13"], "sts13", "test data only"),
        (["--data-dir", str(root), "--batch-size", "0"], "--batch-size", "at least 1"),
    ]
    (root / "STS" / "STS13-en-test" / "STS.gs.FNWN.txt").write_text("1\n2\n")  # 6 pairs, 2 scores
    cases.append(
        (["--data-dir", str(root), "--tasks", "sts13"], "STS.input.FNWN.txt: 6 lines", "STS.gs.FNWN.txt has 2")
    )
    (root / "MR" / "rt-polarity.neg").unlink()
    cases.append((["--data-dir", str(root), "--tasks", "mr"], "MR file", "rt-polarity.neg: no such file"))
    (root / "STS" / "STS16-en-test" / "STS.gs.headlines.txt").write_text("1\n2\nnan\n4\n5\n0\n")
    cases.append((["--data-dir", str(root), "--tasks", "sts16"], "STS.gs.headlines.txt line 3: gold score 'nan' is"))
    stsb_dev = root / "STS" / "STSBenchmark" / "sts-dev.csv"
    stsb_dev.write_text("".join(f"g\tf\ty\t{i}\t3.0\ta b\tc d\n" for i in range(4)))
    cases.append(
        (
            ["--data-dir", str(root), "--mode", "dev", "--tasks", "stsb"],
            f"STSBenchmark dev file {stsb_dev}: all 4 scores are 3; Spearman's correlation is undefined",
        )
    )
    for extra, *messages in cases:
        code, _, err = run_cse(["eval", model, "--pooler", "avg", *extra])
        assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
        assert all(message in err for message in messages), err
    # Data problems are found before the model is loaded: a bad model path is not reached.
    code, _, err = run_cse(["eval", str(tmp_path / "no-model"), "--data-dir", str(root), "--tasks", "mr"])
    assert code == 2 and "rt-polarity.neg" in err


def test_a_json_report_is_never_an_input_nor_inside_the_model_or_data_and_makes_no_folder(
    tiny_model_dir, senteval_files, tmp_path, monkeypatch, run_cse
):
    """Refused before the evaluation, every input left as it was: `--json MODEL/config.json` would destroy the model."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_model_dir, "model")
    shutil.copytree(senteval_files.root, "data")
    Path("run.ckpt").write_bytes(b"a checkpoint")  # never read: the report is checked first
    Path("to-data.json").symlink_to("data")  # links are checked where they lead
    Path("to-model.json").symlink_to("model/config.json")
    inputs = sorted(path for path in Path().rglob("*") if path.is_file())
    before = [path.read_bytes() for path in inputs]
    stsb_dev = "data/STS/STSBenchmark/sts-dev.csv"
    for model, json_path, message in [
        ("model", "model/config.json", "--json model/config.json: is inside model, an input of this run"),
        ("model", "model/scores.json", "--json model/scores.json: is inside model, an input of this run"),
        ("model", stsb_dev, f"--json {stsb_dev}: is inside data, an input of this run; write the report outside it"),
        ("run.ckpt", "run.ckpt", "--json run.ckpt: is an input of this run; write the report to another file"),
        ("model", "data", "--json data: is a directory"),
        ("model", "to-data.json", "--json to-data.json: is a directory (where the symbolic link leads: "),
        ("model", "to-model.json", "--json to-model.json: is inside model, an input of this run"),
        ("model", "reports/eval.json", "--json reports/eval.json: directory reports does not exist"),
    ]:
        code, out, err = run_cse(["eval", model, "--pooler", "avg", "--data-dir", "data", "--json", json_path])
        assert code == 2 and err.startswith(f"error: {message}"), err
        assert len(err.strip().splitlines()) == 1 and out == ""
    assert sorted(path for path in Path().rglob("*") if path.is_file()) == inputs
    assert [path.read_bytes() for path in inputs] == before


def test_a_json_report_that_cannot_be_written_whole_leaves_the_previous_one(
    tiny_model_dir, senteval_files, tmp_path, monkeypatch, run_cse
):
    """Written under a temporary name and renamed: a disk filling up halfway leaves the earlier report intact."""
    monkeypatch.chdir(tmp_path)
    Path("eval.json").write_text('{"scores": "an earlier report"}\n')
    write_text = Path.write_text

    def full_disk(path: Path, text: str, *args, **kwargs) -> int:
        if "eval.json" not in path.name:
            return write_text(path, text, *args, **kwargs)
        write_text(path, text[: len(text) // 2], *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full_disk)
    args = ["eval", str(tiny_model_dir), "--pooler", "avg", "--mode", "dev", "--tasks", "stsb"]
    code, _, err = run_cse([*args, "--data-dir", str(senteval_files.root), "--json", "eval.json"])
    assert code == 2 and err.strip().endswith("error: --json eval.json: write failed (No space left on device)"), err
    assert [path.name for path in tmp_path.iterdir()] == ["eval.json"]
    assert Path("eval.json").read_text() == '{"scores": "an earlier report"}\n'


def test_cls_pooler_without_pooler_weights_is_an_error(tiny_model_dir, senteval_files, tmp_path, run_cse):
    no_pooler = tmp_path / "no-pooler"
    AutoModel.from_pretrained(tiny_model_dir, add_pooling_layer=False).save_pretrained(no_pooler)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(no_pooler)
    args = ["eval", str(no_pooler), "--pooler", "cls", "--mode", "dev", "--data-dir", str(senteval_files.root)]
    code, _, err = run_cse(args)
    assert code == 2 and "has none" in err


def test_help_describes_every_flag(run_cse):
    code, out, _ = run_cse(["eval", "--help"])
    assert code == 0
    for flag in ("--pooler", "--tasks", "--task-set", "--mode", "--data-dir", "--json", "--batch-size", "--max-length"):
        assert flag in out
    assert out.count("(default") >= 4


def test_minilm_matches_sentence_transformers(minilm_dir, tmp_path, run_cse):
    import sentence_transformers

    rows = [
        ("A man is playing a guitar.", "A person plays an instrument.", 3.8),
        ("A dog runs in the park.", "A cat sleeps on the sofa.", 0.6),
        ("The woman is slicing an onion.", "A woman cuts an onion.", 4.6),
        ("Kids are playing football.", "Children play soccer outside.", 4.2),
        ("The stock market fell today.", "A man is riding a horse.", 0.0),
        ("She is reading a book.", "A girl reads a novel.", 3.9),
        ("Two men are fighting.", "Two men are hugging.", 1.4),
        ("The plane is taking off.", "An airplane departs.", 4.4),
    ]
    (tmp_path / "data" / "STS" / "STSBenchmark").mkdir(parents=True)
    (tmp_path / "data" / "STS" / "STSBenchmark" / "sts-dev.csv").write_text(
        "".join(f"main-forums\tf\t2015\t{i:04d}\t{g}\t{a}\t{b}\n" for i, (a, b, g) in enumerate(rows))
    )
    out_file = tmp_path / "eval.json"  # beside the data directory: a report inside it is refused
    args = ["eval", str(minilm_dir), "--pooler", "avg", "--mode", "dev", "--tasks", "stsb"]
    code, _, err = run_cse([*args, "--data-dir", str(tmp_path / "data"), "--json", str(out_file)])
    assert code == 0, err
    model = sentence_transformers.SentenceTransformer(str(minilm_dir), device="cpu")
    first = model.encode([a for a, _, _ in rows], convert_to_tensor=True)
    second = model.encode([b for _, b, _ in rows], convert_to_tensor=True)
    cosines = torch.nn.functional.cosine_similarity(first, second).tolist()
    expected = 100 * spearmanr(cosines, [g for _, _, g in rows])[0]
    assert json.loads(out_file.read_text())["scores"]["STSBenchmark"] == pytest.approx(expected, abs=1e-6)
