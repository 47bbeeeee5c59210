"""How a sentence-transformers model embeds, read from its files, so that cse embeds as
`SentenceTransformer(directory).encode` does: those of a local directory, or of a hub id through the Hugging Face
cache (`cse.inference.model_files`), as `SentenceTransformer(hub_id)` reads them.

A directory with `modules.json` lists its modules. cse reproduces `Transformer` (the model at the directory's root)
then `Pooling` (mode `cls`: cse's `cls_before_pooler`; `mean`: `avg`) then, optionally, `Normalize`, truncating each
sentence where the `Transformer` module does: `max_seq_length` in `sentence_bert_config.json` (or
`model_max_length` among its tokenizer arguments, which sentence-transformers lets win), else the tokenizer's limit.
Anything else changes the embedding in a way cse does not apply, so it is refused in one line naming it, never
skipped: another module (`Dense`, `WeightedLayerPooling`, `LayerNorm`, ...), a pooling mode cse has no pooler for
(`max`, `weightedmean`, ..., or several modes concatenated: refused by `cse.inference.loading` unless `--pooler`
says how to pool), lowercasing (`do_lower_case`), other tokenizer or call arguments, another transformer task, and a
default prompt put before every sentence (`config_sentence_transformers.json`'s `default_prompt_name`).

A `cse` export (`cse_config.json`) is not read here: its module files are written by cse to give cse's embedding.
"""

import json
from dataclasses import dataclass

from cse.errors import InputError
from cse.export.pooling import CSE_CONFIG_NAME
from cse.inference.model_files import ModelFiles
from cse.models.poolers import PoolerType

MODULES_NAME = "modules.json"
PROMPTS_NAME = "config_sentence_transformers.json"
# The Transformer module's settings, under the first of these names that exists (sentence-transformers' own order).
TRANSFORMER_CONFIG_NAMES = tuple(
    f"sentence_{family}_config.json" for family in ("bert", "roberta", "distilbert", "camembert", "albert")
) + ("sentence_xlm-roberta_config.json", "sentence_xlnet_config.json")
POOLERS = {"cls": "cls_before_pooler", "mean": "avg"}  # Pooling mode -> the cse pooler computing it
LEGACY_MODES = {  # Pooling's boolean keys before `pooling_mode`, in sentence-transformers' concatenation order
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
TOKENIZER_ARGUMENTS = ("tokenizer_args", "processor_kwargs")  # the old name and sentence-transformers 6's
IGNORED_TOKENIZER_ARGUMENTS = {"model_max_length", "trust_remote_code"}  # read, or never honoured by cse


@dataclass(frozen=True)
class SentenceTransformersPipeline:
    """What `SentenceTransformer(directory).encode` does after the transformer, in cse's terms.

    Attributes:
        pooling: the `Pooling` module's mode as the directory names it (`mean`, `cls`, `max`, `cls+mean`).
        pooling_file: the file that says it, relative to the directory (`1_Pooling/config.json`), for messages.
        pooler_type: cse's pooler computing `pooling`; None when cse has none.
        max_length: the tokens kept of a sentence; None: the tokenizer's limit (`model_max_length`).
        max_length_key: where `max_length` is set (`sentence_bert_config.json's max_seq_length`), for messages.
        normalize: a `Normalize` module follows the pooling.
    """

    pooling: str
    pooling_file: str
    pooler_type: PoolerType | None
    max_length: int | None
    max_length_key: str
    normalize: bool


def read_pipeline(model: str) -> SentenceTransformersPipeline | None:
    """The pipeline of the sentence-transformers model `model` (a directory or a hub id); None for a `cse` export, a
    model without `modules.json`, or a hub id whose files are neither cached nor reachable.

    Raises:
        InputError: a module or setting cse cannot reproduce, or a file that does not hold what it should.
    """
    files = ModelFiles(model)
    if files.path(MODULES_NAME) is None or files.path(CSE_CONFIG_NAME) is not None:
        return None
    where = f"model '{model}'"
    modules = _read_json(files, MODULES_NAME, where)
    if not isinstance(modules, list) or not all(
        isinstance(entry, dict) and isinstance(entry.get("type"), str) for entry in modules
    ):
        raise InputError(f"{where}: {MODULES_NAME} is not a list of modules with a 'type' each")
    names = [_class_name(entry) for entry in modules]
    if names[:1] != ["Transformer"] or modules[0].get("path", "") != "":
        first = f"{modules[0]['type']} in '{modules[0].get('path')}'" if modules else "nothing"
        raise InputError(
            f"{where}: {MODULES_NAME} starts with {first}; cse reads a Transformer at the directory's root"
        )
    for entry, name in zip(modules[1:], names[1:], strict=True):
        if name not in ("Pooling", "Normalize") or names.count(name) > 1:
            raise InputError(
                f"{where}: {MODULES_NAME} lists {name} ('{entry.get('path')}', {entry['type']}), which cse cannot "
                "apply; embed with sentence-transformers"
            )
    if names[1:2] != ["Pooling"]:
        raise InputError(f"{where}: {MODULES_NAME} has no Pooling module right after the Transformer")
    _check_no_default_prompt(files, where)
    pooling_file = f"{modules[1].get('path', '')}/config.json".lstrip("/")
    pooling = _pooling_mode(_read_json(files, pooling_file, where), pooling_file, where)
    max_length, max_length_key = _max_length(files, where)
    return SentenceTransformersPipeline(
        pooling, pooling_file, POOLERS.get(pooling), max_length, max_length_key, "Normalize" in names
    )


def _class_name(entry: dict) -> str:
    """`Pooling` for `sentence_transformers.models.Pooling` (and sentence-transformers 6's longer paths); the whole
    type for a module from elsewhere (custom code)."""
    module_type = entry["type"]
    return module_type.rsplit(".", 1)[-1] if module_type.startswith("sentence_transformers.") else module_type


def _pooling_mode(config: object, pooling_file: str, where: str) -> str:
    """The mode(s) of a Pooling config, as sentence-transformers reads them: `pooling_mode` (a name or a list), else
    the legacy boolean keys, else `mean`; several modes joined by `+`."""
    if not isinstance(config, dict):
        raise InputError(f"{where}: {pooling_file} is not a JSON object")
    mode = config.get("pooling_mode")
    if mode is None:
        modes = [name for key, name in LEGACY_MODES.items() if config.get(key)] or ["mean"]
    else:
        modes = [mode] if isinstance(mode, str) else mode
    if not isinstance(modes, list) or not modes or not all(isinstance(name, str) for name in modes):
        raise InputError(f"{where}: {pooling_file}: pooling_mode {mode!r} is not a mode name or a list of them")
    return "+".join(modes)


def _max_length(files: ModelFiles, where: str) -> tuple[int | None, str]:
    """The Transformer module's truncation and the key that sets it; refuses settings that change the tokens."""
    name = next((name for name in TRANSFORMER_CONFIG_NAMES if files.path(name) is not None), None)
    if name is None:
        return None, ""
    config = _read_json(files, name, where)
    if not isinstance(config, dict):
        raise InputError(f"{where}: {name} is not a JSON object")
    if config.get("do_lower_case"):
        raise InputError(f"{where}: {name}: do_lower_case true lowercases every sentence first, which cse does not do")
    if config.get("transformer_task", "feature-extraction") != "feature-extraction":
        raise InputError(
            f"{where}: {name}: transformer_task {config['transformer_task']!r}; cse embeds with a feature-extraction "
            "model"
        )
    if config.get("processing_kwargs"):
        raise InputError(
            f"{where}: {name}: processing_kwargs change how sentences are tokenized, which cse does not do"
        )
    max_length, key = config.get("max_seq_length"), f"{name}'s max_seq_length"
    for arguments_key in TOKENIZER_ARGUMENTS:
        arguments = config.get(arguments_key) or {}
        if not isinstance(arguments, dict):
            raise InputError(f"{where}: {name}: {arguments_key} is not a JSON object")
        unknown = sorted(set(arguments) - IGNORED_TOKENIZER_ARGUMENTS)
        if unknown:
            raise InputError(
                f"{where}: {name}: {arguments_key} {', '.join(unknown)} change the tokenizer, which cse does not do"
            )
        if "model_max_length" in arguments:  # passed to the tokenizer, it wins over max_seq_length
            max_length, key = arguments["model_max_length"], f"{name}'s {arguments_key}.model_max_length"
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2):
        raise InputError(f"{where}: {key} {max_length!r} is not a number of tokens (a whole number >= 2)")
    return max_length, key


def _check_no_default_prompt(files: ModelFiles, where: str) -> None:
    """Refuse a default prompt: `encode` would put it before every sentence."""
    if files.path(PROMPTS_NAME) is None:
        return
    config = _read_json(files, PROMPTS_NAME, where)
    name = config.get("default_prompt_name") if isinstance(config, dict) else None
    prompts = config.get("prompts") if isinstance(config, dict) else None
    if name is not None and (not isinstance(prompts, dict) or prompts.get(name) != ""):
        raise InputError(
            f"{where}: {PROMPTS_NAME}: default_prompt_name {name!r} puts a prompt before every sentence, which cse "
            "does not do"
        )


def _read_json(files: ModelFiles, name: str, where: str) -> object:
    path = files.path(name)
    if path is None:
        raise InputError(f"{where}: {name} is missing ({MODULES_NAME} lists it)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(f"{where}: {name} is not valid JSON (line {error.lineno}: {error.msg})") from None
    except (UnicodeDecodeError, OSError) as error:
        raise InputError(f"{where}: {name} cannot be read ({type(error).__name__})") from None
