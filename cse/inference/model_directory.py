"""Check a local model directory's files before transformers reads them: a damaged one is one line naming the file.

Left to transformers, a broken `config.json` reads as a failed hub download and a truncated `model.safetensors` or
`tokenizer.json` ends in a traceback. Weights are read from safetensors files only: a pickled `pytorch_model.bin`
can run code when it is loaded.
"""

import json
from pathlib import Path

from safetensors import safe_open

from cse.errors import InputError, first_line

PICKLED_WEIGHTS = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def check_model_directory(model: str) -> None:
    """Raise `InputError` for a damaged JSON or safetensors file in `model`, or weights that are not safetensors.

    A hub id (not a local directory) is left to the hub. Only the files' structure is checked (JSON syntax,
    safetensors headers and lengths), not what they hold: safetensors carry no checksum.
    """
    directory = Path(model).expanduser()
    if not directory.is_dir():
        return
    for path in sorted(directory.glob("*.json")):  # config, tokenizer, cse_config and sentence-transformers files
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise InputError(
                f"model '{model}': {path.name} is not valid JSON (line {error.lineno}: {error.msg})"
            ) from None
        except UnicodeDecodeError:
            raise InputError(f"model '{model}': {path.name} is not UTF-8 text (a binary or damaged file)") from None
        except OSError as error:
            raise InputError(f"model '{model}': {path.name} cannot be read ({error.strerror})") from None
    weights = sorted(directory.glob("*.safetensors"))
    if not weights:
        pickled = sorted(path.name for path in directory.iterdir() if path.suffix in PICKLED_WEIGHTS)
        found = f" ({', '.join(pickled)} is pickled, which can run code on loading)" if pickled else ""
        raise InputError(f"model '{model}': no .safetensors weights{found}; cse loads weights from safetensors only")
    for path in weights:
        try:
            with safe_open(path, framework="pt"):  # the header, and whether the file holds all it declares
                pass
        except Exception as error:  # safetensors raises its own SafetensorError, and OSError
            raise InputError(f"model '{model}': {path.name} is damaged or truncated ({first_line(error)})") from None
