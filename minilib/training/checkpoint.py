"""Checkpoints that are written atomically and verified when read.

File layout (one file)::

    minilib-checkpoint 1\\n                             magic line
    {"sha256": "<hex>", "payload_bytes": <n>}\\n         JSON header
    <n bytes: torch.save(payload)>

Writing goes to a temporary file in the same folder, named for this process alone, which is flushed, fsync'ed and
then renamed over the target with ``os.replace`` (atomic on POSIX and Windows), and the folder is fsync'ed so the
rename survives a power cut (:func:`minilib.tempfiles.atomic_write`). A process killed at any moment therefore
leaves either the previous checkpoint or the new one, never a half-written file under the checkpoint's name; the
temporary file it may leave is removed when the next run starts in that folder (:func:`remove_stale_temp_files`).
Reading checks the magic, the length and the
SHA-256 before unpickling, so a truncated or bit-flipped file raises :class:`CheckpointError` naming it
instead of resuming from garbage; the payload is then read with ``torch.load(weights_only=True)``, which
refuses arbitrary pickled objects.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import torch

from ..tempfiles import atomic_write, remove_stale

MAGIC = b"minilib-checkpoint 1\n"
_MAX_HEADER = 4096


class CheckpointError(ValueError):
    """A checkpoint file exists but cannot be trusted (not a checkpoint, truncated, corrupted).
    ``path`` is the file."""

    def __init__(self, message: str, path):
        super().__init__(message)
        self.path = Path(path)


def save_checkpoint(path, payload: dict) -> Path:
    """Write ``payload`` (tensors, numbers, strings, lists, dicts) to ``path`` atomically; returns the path.

    The temporary file is ``.<name>.<pid>.<16 hex digits>.tmp`` (:func:`minilib.tempfiles.atomic_write`): no other
    writer shares it, and :func:`remove_stale_temp_files` knows whose it is."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    header = json.dumps({"sha256": hashlib.sha256(data).hexdigest(), "payload_bytes": len(data)}).encode() + b"\n"

    def write(f):
        f.write(MAGIC + header)
        f.write(data)

    return atomic_write(path, write)


# ".<name>.<pid>.<hex>.tmp" of atomic_write, and ".<name>.<pid>.tmp" of the code before it
CHECKPOINT_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)(?:\.[0-9a-f]{16})?\.tmp$")


def remove_stale_temp_files(folder) -> list:
    """Remove the temporary files that writers killed mid-save left in ``folder`` (those whose process is gone, or
    untouched for an hour: :func:`minilib.tempfiles.remove_stale`); the trainer calls it when a run starts.
    Returns the removed paths."""
    return remove_stale(folder, CHECKPOINT_TEMP_NAME)


def read_verified_bytes(path) -> bytes:
    """The payload bytes of checkpoint ``path`` after checking magic, length and SHA-256."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    raw = path.read_bytes()
    if not raw.startswith(MAGIC):
        raise CheckpointError(f"{path} is not a minilib checkpoint (it does not start with {MAGIC!r}); "
                              "it may be damaged or written by another program", path)
    end = raw.find(b"\n", len(MAGIC), len(MAGIC) + _MAX_HEADER)
    try:
        header = json.loads(raw[len(MAGIC):end]) if end >= 0 else None
        expected, size = header["sha256"], int(header["payload_bytes"])
    except (ValueError, TypeError, KeyError):
        raise CheckpointError(f"checkpoint {path} has a damaged header; delete it and resume from an older "
                              "checkpoint or start again", path) from None
    payload = raw[end + 1:]
    if len(payload) != size:
        raise CheckpointError(f"checkpoint {path} is truncated or has trailing bytes: the header says "
                              f"{size} payload bytes, the file has {len(payload)}", path)
    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected:
        raise CheckpointError(f"checkpoint {path} is corrupted: SHA-256 of the payload is {actual}, "
                              f"the header recorded {expected}", path)
    return payload


def load_checkpoint(path, map_location="cpu") -> dict:
    """The payload of checkpoint ``path``, verified (see :func:`read_verified_bytes`)."""
    payload = read_verified_bytes(path)
    try:
        return torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except Exception as err:  # a payload that hashes right but does not unpickle was written by other code
        raise CheckpointError(f"checkpoint {path} passed its checksum but cannot be loaded: "
                              f"{type(err).__name__}: {err}", path) from err
