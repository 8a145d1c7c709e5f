"""The typed registry: domain name -> Domain, and data_source alias -> domain.

Like lm-evaluation-harness's registry it rejects duplicates, checks types and suggests near
matches on a typo. Routing by data_source is a dict lookup, never an if/elif chain on strings.
"""

from __future__ import annotations

import difflib

from mdrl.domains.base import Domain

_DOMAINS: dict[str, Domain] = {}
_SOURCES: dict[str, str] = {}


def _key(name: str) -> str:
    return name.strip().lower()


def register_domain(domain: Domain) -> Domain:
    if not isinstance(domain, Domain):
        raise TypeError(f"register_domain expects a Domain, got {type(domain).__name__}")
    if domain.name in _DOMAINS:
        raise ValueError(f"domain {domain.name!r} is already registered")
    for source in (domain.name, *domain.data_sources):
        owner = _SOURCES.get(_key(source))
        if owner is not None and owner != domain.name:
            raise ValueError(f"data_source {source!r} of domain {domain.name!r} already routes to {owner!r}")
    _DOMAINS[domain.name] = domain
    for source in (domain.name, *domain.data_sources):
        _SOURCES[_key(source)] = domain.name
    return domain


def _unknown(kind: str, name: str, known: list[str]) -> KeyError:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    return KeyError(f"unknown {kind} {name!r}.{hint} Known: {', '.join(sorted(known))}")


def get_domain(name: str) -> Domain:
    _ensure_loaded()
    try:
        return _DOMAINS[name]
    except KeyError:
        raise _unknown("domain", name, list(_DOMAINS)) from None


def domain_for_source(data_source: str) -> Domain:
    """The domain that scores rows of this data_source (study names and common aliases)."""
    _ensure_loaded()
    if not isinstance(data_source, str):
        raise KeyError(f"data_source must be a string, got {type(data_source).__name__}")
    name = _SOURCES.get(_key(data_source))
    if name is None:
        raise _unknown("data_source", data_source, sorted(set(_SOURCES)))
    return _DOMAINS[name]


def all_domains() -> dict[str, Domain]:
    _ensure_loaded()
    return dict(_DOMAINS)


def known_sources() -> list[str]:
    _ensure_loaded()
    return sorted(_SOURCES)


def _ensure_loaded() -> None:
    # Importing the package registers the built-in domains; this keeps `registry` importable on its own.
    import mdrl.domains  # noqa: F401
