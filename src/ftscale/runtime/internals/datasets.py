"""datasets' internals (ftscale.runtime.internals): a loaded dataset's fingerprint."""

from __future__ import annotations


def dataset_fingerprint(dataset) -> str | None:
    """A loaded `datasets.Dataset`'s fingerprint (None for a dataset without one)."""
    return getattr(dataset, "_fingerprint", None)
