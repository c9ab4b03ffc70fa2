"""What every rule's script does first: send all output to the rule's log."""
from __future__ import annotations

import os
import sys


def log_to_file(path: str):
    """Redirect stdout and stderr (file descriptors too, so C libraries' output lands there).
    Returns a stream to the original stderr, for the rare line the user must see on the terminal."""
    terminal = os.fdopen(os.dup(2), "w")
    open(path, "w").close()
    log = open(path, "a", buffering=1)   # append: a warm worker's child writes to the same file
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    return terminal
