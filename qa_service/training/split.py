"""Which trainer a labelled question belongs to when both the encoder and the judge could learn from it: a stable
hash of its id (a layperson question's, an FAQ entry's), so the judge is fitted on questions the fine-tuned encoder
never saw and its features look on them as they will on a citizen's.

    for_encoder("stard-17", 0.75)  # True for about three in four ids, the same on every machine
"""
from __future__ import annotations

import hashlib


def for_encoder(group_id: str, share: float) -> bool:
    """Whether the question (or FAQ entry) `group_id` is the encoder's: a stable share of ids."""
    digest = int(hashlib.sha256(f"encoder-split|{group_id}".encode()).hexdigest()[:8], 16)
    return digest / 0xFFFFFFFF < share
