"""Opening a file that a configuration or an archive names, refusing what is not a regular file
before reading a byte of it. Contains no business logic."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path


class NotRegularFile(Exception):
    """A FIFO, device, socket or directory (or, not following links, a symbolic link)."""

    def __init__(self, mode: int) -> None:
        super().__init__(stat.filemode(mode))
        self.mode = mode


def open_regular(path: Path, *, follow_symlinks: bool = True) -> tuple[io.BufferedReader, int]:
    """Open `path` for reading if it is a regular file; the handle and the file's size.

    O_NONBLOCK: opening a FIFO must not wait for a writer before it can be refused (a hang, or
    `/dev/zero` read until memory runs out, is what a plain open does). Without
    `follow_symlinks`, O_NOFOLLOW makes a symbolic link fail to open (OSError, ELOOP).
    Raises NotRegularFile, or OSError when the file cannot be opened at all.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow_symlinks else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise NotRegularFile(info.st_mode)
    return os.fdopen(fd, "rb"), info.st_size
