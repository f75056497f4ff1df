"""Parsing of 'name' / 'name:v1,v2' specs, shared by the noise and schedule registries (CLI-friendly)."""

from __future__ import annotations

from customvid.errors import CustomvidError


def parse_spec(spec: str, kind: str) -> tuple[str, list[float]]:
    """'ar1:0.15' -> ('ar1', [0.15]); 'iid' -> ('iid', []). Names are case-insensitive."""
    name, _, args = spec.strip().partition(":")
    try:
        values = [float(v) for v in args.split(",")] if args.strip() else []
    except ValueError:
        raise CustomvidError(
            f"bad {kind} {spec!r}: parameters after ':' must be comma-separated numbers"
        ) from None
    if not name.strip():
        raise CustomvidError(f"bad {kind} {spec!r}: missing name")
    return name.strip().lower(), values
