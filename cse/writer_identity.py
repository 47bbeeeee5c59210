"""Who wrote a temporary name: this host and process, and whether a process named in one is gone.

Temporary files and folders that `cse` renames into place carry the host and process id of their writer. What a
killed process (SIGKILL, a power cut) left behind can then be told from a write still under way, also on a folder
that several hosts share: only leftovers of this host whose process no longer exists are removed.
"""

import os
import re
import socket


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
