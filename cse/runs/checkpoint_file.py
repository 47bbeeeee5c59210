"""Read a `cse` checkpoint file without running code from it: the one place `cse` opens a `.ckpt`.

`torch.load(weights_only=False)` unpickles whatever the file names, so a checkpoint from anyone could run any
Python on load. Here it is read with `weights_only=True`: tensors and plain values (dict, list, str, numbers,
None) only, plus the path types below. A real `cse fit` checkpoint holds nothing else (its hyperparameters are
plain values, Lightning's loop and callback states too); a file that names any other global (a class, a
function such as `os.system`) is refused before anything is unpickled.

Every way a file can fail to be a checkpoint ends in one `InputError` line naming it: missing, a directory, empty,
not a checkpoint, truncated (an interrupted copy), damaged (a zip member whose checksum fails), unsafe.
(Lightning reads the checkpoint `cse fit --ckpt_path` resumes from itself, with `weights_only=True` too.)
"""

import pathlib
import pickle
import re
import zipfile
import zlib
from pathlib import Path

import torch

from cse.errors import InputError, first_line

# Paths appear in hyperparameters set from Python; constructing one runs no code.
SAFE_GLOBALS = [pathlib.PosixPath, pathlib.PurePosixPath, pathlib.WindowsPath, pathlib.PureWindowsPath]
ZIP_MAGIC = b"PK\x03\x04"  # torch.save has written zip archives since PyTorch 1.6; Lightning always does
TENSOR_RECORD = re.compile(r"/data/\d+$")  # `archive/data/17`: one tensor's storage; the other records are small


def load_checkpoint(path: str | Path, *, metadata_only: bool = False) -> dict:
    """The content of a `cse` (Lightning) checkpoint, on the CPU.

    Args:
        path: the `.ckpt` file.
        metadata_only: memory-map the tensors instead of reading them (for the step, hyperparameters and such of
            a checkpoint of gigabytes); the checksums of the tensors' data are then not verified, the rest's are.

    Raises:
        InputError: one line naming the file and what is wrong with it.
    """
    path = Path(path)
    where = f"checkpoint {path}"
    if not path.exists():
        raise InputError(f"{where}: no such file")
    if path.is_dir():
        raise InputError(f"{where}: is a directory; expected a checkpoint file")
    _check_archive(path, verify_checksums=not metadata_only)
    with torch.serialization.safe_globals(SAFE_GLOBALS):
        try:  # reads the pickle's opcodes without running them
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception as error:  # a zip archive of something else (torch raises several types)
            raise InputError(f"{where}: not a PyTorch checkpoint ({first_line(error)})") from None
        if unsafe:
            raise InputError(
                f"{where}: refused: loading it would create or call {', '.join(sorted(unsafe))}, which can run "
                "code; cse loads only tensors and plain values from a checkpoint"
            )
        try:
            content = torch.load(path, map_location="cpu", weights_only=True, mmap=metadata_only)
        except pickle.UnpicklingError:  # what the static check above cannot see; torch's message is a page long
            raise InputError(
                f"{where}: refused: it holds more than tensors and plain values, which cse loads"
            ) from None
        except Exception as error:  # torch raises several types for damaged archives
            raise InputError(f"{where}: damaged ({type(error).__name__}: {first_line(error)})") from None
    if not isinstance(content, dict):
        raise InputError(f"{where}: not a Lightning checkpoint (holds a {type(content).__name__}, not a dict)")
    return content


def _check_archive(path: Path, verify_checksums: bool) -> None:
    """Raise `InputError` unless `path` is a complete zip archive as `torch.save` writes, with intact members."""
    where = f"checkpoint {path}"
    try:
        with path.open("rb") as handle:
            start = handle.read(len(ZIP_MAGIC))
        if not start:
            raise InputError(f"{where}: file is empty")
        if not zipfile.is_zipfile(path):
            if start == ZIP_MAGIC:
                raise InputError(f"{where}: truncated (its zip archive has no end: an interrupted write or copy?)")
            raise InputError(f"{where}: not a PyTorch checkpoint (torch.save writes a zip archive)")
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                if verify_checksums or not TENSOR_RECORD.search(member.filename):
                    with archive.open(member) as content:  # reading it to the end checks its CRC-32
                        while content.read(1 << 24):
                            pass
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError, zlib.error) as error:
        raise InputError(f"{where}: damaged ({first_line(error)}: a corrupted copy?)") from None
    except OSError as error:
        raise InputError(f"{where}: cannot be read ({error.strerror or first_line(error)})") from None
