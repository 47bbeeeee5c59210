"""Temporary names beside a target that say who wrote them: `.NAME.cse-KIND-HOST-PID-TOKEN`.

Temporary files and folders that `cse` renames into place carry the host and process id of their writer. What a
killed process (SIGKILL, a power cut) left behind can then be told from a write still under way, also on a folder
that several hosts share: only leftovers of this host whose process no longer exists count as abandoned.
"""

import os
import re
import secrets
import socket
from pathlib import Path

# HOST keeps only letters and digits and KIND only lowercase letters, so that the fields after NAME parse back.
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.cse-(?P<kind>[a-z]+)-(?P<host>[A-Za-z0-9]*)-(?P<pid>\d+)-[0-9a-f]{8}$")


def temporary_sibling(target: Path, kind: str) -> Path:
    """A new name beside `target` for this process to write under, of the given kind (`tmp`, `staging`, ...)."""
    return target.with_name(f".{target.name}.cse-{kind}-{host_name()}-{os.getpid()}-{secrets.token_hex(4)}")


def abandoned(entry: Path) -> tuple[str, str] | None:
    """`(target name, kind)` of a temporary sibling whose writer, a process of this host, is gone; else None."""
    match = _TEMPORARY.match(entry.name)
    if match is None or match["host"] != host_name() or process_alive(int(match["pid"])):
        return None
    return match["name"], match["kind"]


def host_name() -> str:
    """This host's name, letters and digits only (at most 32), so that it parses back out of a file name."""
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32]


def process_alive(pid: int) -> bool:
    """Whether process `pid` of this host may still be writing (when in doubt, it may)."""
    if pid == os.getpid() or os.name != "posix":  # on Windows os.kill would end the process: keep its files
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process, or not a PID this system can have: leave it
    return True
