"""Every cache kind `vcomp cache` walks: adding a kind is one line here."""

from __future__ import annotations

from composer.cachekinds import CacheKind
from composer.caches.images import ImageOutputs
from composer.repo.pkgcache import PACKAGES

KINDS: tuple[CacheKind, ...] = (
    ImageOutputs(),
    PACKAGES,
)
