"""Files only their owner can read, written whole: secrets, the stack's details, spooled
reports, the partitions `siaga up` gives its processes."""

from __future__ import annotations

import os
from pathlib import Path

# Owner only, whatever the umask.
FILE_MODE = 0o600


def write_private(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Write `data` to `path`, readable by its owner only from its creation on and renamed
    into place whole, so a reader never sees half of it; `durable` also syncs the file and
    its folder, so that a crash after this returns cannot lose it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # a file left there keeps its mode through os.open
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if durable:
        # The rename is durable once the folder is.
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
