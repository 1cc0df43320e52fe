"""What a transport plays for one prompt or pause: a URL path under the service, or words for
<Say>.  Its own module so the media layer can name it without the prompt store's database side."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Audible:
    """One thing to play: a URL path under the service (kind "play") or words for <Say>."""

    kind: str  # "play" | "say"
    path: str
    text: str
