"""One hash for a set of weights, so peers can compare aggregates without shipping them.

The digest covers, for every array in order, its dtype (as little-endian), its shape and its
bytes, each framed by its length: two weight lists have the same digest exactly when they have the
same number of arrays with the same dtypes, shapes and bits. It does not depend on how the arrays
are stored (file layout, names, byte order, memory layout), unlike a file's CID.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

import numpy as np

from decentralml.errors import InvalidInput

#: Bumped if the framing below ever changes, so old and new digests never collide.
_DOMAIN = b"decentralml.fl.aggregate_digest/1\n"


def aggregate_digest(weights: Sequence[np.ndarray]) -> str:
    """The SHA-256 (hex) of ``weights``' dtypes, shapes and bytes, in order."""
    h = hashlib.sha256(_DOMAIN)
    h.update(struct.pack("<Q", len(weights)))
    for i, w in enumerate(weights):
        a = np.asarray(w)
        if a.dtype.hasobject or a.dtype.kind not in "fiub":
            raise InvalidInput("weights", f"array {i} has dtype {a.dtype}", "numeric arrays")
        a = np.asarray(a, dtype=a.dtype.newbyteorder("<"), order="C")  # keeps 0-d arrays 0-d
        descr = a.dtype.str.encode("ascii")
        h.update(struct.pack("<Q", len(descr)) + descr)
        h.update(struct.pack("<Q", a.ndim) + struct.pack(f"<{a.ndim}Q", *a.shape))
        h.update(struct.pack("<Q", a.nbytes))
        h.update(a.data.cast("B") if a.nbytes else b"")
    return h.hexdigest()
