"""What every rule's script does first: send all output to the rule's log."""
from __future__ import annotations

import os
import sys


def log_to_file(path: str) -> None:
    """Redirect stdout and stderr (file descriptors too, so C libraries' output lands there)."""
    open(path, "w").close()
    log = open(path, "a", buffering=1)   # append: a warm worker's child writes to the same file
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
