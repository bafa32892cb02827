"""Short content hashes that prove two runs were paired: same data, weights and sample order."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from torch import Tensor, nn


def tensors_digest(tensors: Iterable[Tensor], extra: str = "") -> str:
    """First 16 hex digits of the SHA-256 of the tensors' bytes (and ``extra``), in order."""
    sha = hashlib.sha256(extra.encode())
    for tensor in tensors:
        sha.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return sha.hexdigest()[:16]


def weights_digest(net: nn.Module) -> str:
    """Digest of every parameter and buffer, by name: equal only for identical weights."""
    state = net.state_dict()
    return tensors_digest((state[name] for name in sorted(state)), ",".join(sorted(state)))
