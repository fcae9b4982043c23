"""The bundled sample news site: a deterministic, seedable site served on loopback.

``SampleSite`` is the content model and ground truth; ``SiteServer`` serves it;
``python -m samplesite`` runs it from the command line.
"""

from __future__ import annotations

from samplesite.model import DEFAULT_CLOCK, FURNITURE_STRINGS, SampleSite
from samplesite.server import SiteServer

__all__ = ["DEFAULT_CLOCK", "FURNITURE_STRINGS", "SampleSite", "SiteServer"]
