"""DDP tests on this machine: processes joined as torchrun joins them, in a gloo process group.

Lightning's `ddp` strategy then joins the existing group instead of launching processes of its own. A short timeout
turns a process left waiting in a collective into an error within the test, where the default would wait half an hour.
"""

import os
import socket
from datetime import timedelta

import torch


def free_port() -> int:
    """A TCP port free on this machine now, for the group's rendezvous."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def join_gloo_group(rank: int, world_size: int, port: int, timeout_s: int) -> None:
    """Set what torchrun sets for process `rank` of `world_size` on one node, and join the gloo process group."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(world_size),
        NODE_RANK="0",
        LOCAL_RANK=str(rank),
    )
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world_size, timeout=timedelta(seconds=timeout_s))
