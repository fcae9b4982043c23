"""Reading a TOML file with errors that name the file (config and site profiles alike)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from newsvault.errors import ConfigError


def read_toml(path: Path, error: type[ConfigError] = ConfigError) -> dict[str, Any]:
    """Parse ``path``; a missing, unreadable or malformed file raises ``error`` naming it."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise error(path, "-", "file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise error(path, "-", f"cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise error(path, "-", f"not valid TOML: {exc}") from exc
