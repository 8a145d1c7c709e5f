"""The typed registry: domain name -> Domain, and data_source alias -> domain.

Like lm-evaluation-harness's registry it rejects duplicates, checks types and suggests near
matches on a typo. Routing by data_source is a dict lookup, never an if/elif chain on strings.

Where domains come from, in order: the built-in files (`mdrl.domains`), then every Python entry point
in the group `mdrl.domains` (a module that registers its domains on import, or a callable that does),
then the modules named in $MDRL_DOMAINS (comma-separated; `mdrl --domains` sets it, so child
processes and reward workers see the same domains). A family (`register_family("rg", ...)`) makes
domains named `rg:<member>` on first use, so a family of a hundred tasks costs nothing until one is
asked for.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import os
from dataclasses import dataclass
from typing import Callable, Iterable

from mdrl.domains.base import Domain, SuiteDef

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "mdrl.domains"
DOMAINS_ENV = "MDRL_DOMAINS"

_DOMAINS: dict[str, Domain] = {}
_SOURCES: dict[str, str] = {}


@dataclass(frozen=True)
class Family:
    """Domains made on demand: `prefix:member` -> make(member) (which returns the Domain, unregistered)."""

    prefix: str
    make: Callable[[str], Domain]
    members: Callable[[], Iterable[str]]
    description: str = ""


_FAMILIES: dict[str, Family] = {}
#: Family members made so far: routed like any domain, but left out of the listings, so what
#: all_domains() and known_sources() show never depends on which members this process happened to use.
_MADE: set[str] = set()
_PLUGIN_ERRORS: list[str] = []
_loaded_plugins: set[str] = set()


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


def register_family(family: Family) -> Family:
    if not isinstance(family, Family):
        raise TypeError(f"register_family expects a Family, got {type(family).__name__}")
    if family.prefix in _FAMILIES:
        raise ValueError(f"domain family {family.prefix!r} is already registered")
    _FAMILIES[family.prefix] = family
    return family


def _from_family(name: str) -> Domain | None:
    prefix, sep, member = name.partition(":")
    family = _FAMILIES.get(prefix) if sep else None
    if family is None or not member:
        return None
    if name in _DOMAINS:
        return _DOMAINS[name]
    domain = family.make(member)  # raises KeyError naming the family's members on a typo
    if domain.name != name:
        raise ValueError(f"family {prefix!r} made domain {domain.name!r} for {name!r}")
    _MADE.add(name)
    return register_domain(domain)


def _unknown(kind: str, name: str, known: list[str]) -> KeyError:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    families = "".join(f", {prefix}:<{family.description or 'member'}>" for prefix, family in _FAMILIES.items())
    broken = f" (domain plug-ins that failed to load: {'; '.join(_PLUGIN_ERRORS)})" if _PLUGIN_ERRORS else ""
    return KeyError(f"unknown {kind} {name!r}.{hint} Known: {', '.join(sorted(known))}{families}{broken}")


def get_domain(name: str) -> Domain:
    _ensure_loaded()
    if not isinstance(name, str):
        raise KeyError(f"a domain name must be a string, got {type(name).__name__}")
    domain = _DOMAINS.get(name) or _from_family(name)
    if domain is None:
        raise _unknown("domain", name, list(_DOMAINS))
    return domain


def domain_for_source(data_source: str) -> Domain:
    """The domain that scores rows of this data_source (study names and common aliases)."""
    _ensure_loaded()
    if not isinstance(data_source, str):
        raise KeyError(f"data_source must be a string, got {type(data_source).__name__}")
    name = _SOURCES.get(_key(data_source))
    if name is not None:
        return _DOMAINS[name]
    domain = _from_family(data_source.strip())
    if domain is None:
        raise _unknown("data_source", data_source, sorted(set(_SOURCES)))
    return domain


def is_domain(name: str) -> bool:
    """Whether `name` names a registered domain or a member of a family (made on the spot)."""
    try:
        get_domain(name)
    except KeyError:
        return False
    return True


def all_domains() -> dict[str, Domain]:
    """The declared domains: built-in and plug-in ones (family members are made on demand and not listed;
    see `domains_named`)."""
    _ensure_loaded()
    return {name: domain for name, domain in _DOMAINS.items() if name not in _MADE}


def domains_named(keys: Iterable[str]) -> dict[str, Domain]:
    """all_domains() plus the family members among `keys` (a mixture's keys), made if need be."""
    domains = all_domains()
    for key in keys:
        if key not in domains and ":" in key and is_domain(key):
            domains[key] = get_domain(key)
    return domains


def families() -> dict[str, Family]:
    _ensure_loaded()
    return dict(_FAMILIES)


def groups() -> list[str]:
    """The groups of the registered domains, in registration order."""
    return list(dict.fromkeys(domain.group for domain in all_domains().values()))


def known_sources() -> list[str]:
    _ensure_loaded()
    return sorted(source for source, name in _SOURCES.items() if name not in _MADE)


def find_suite(name: str) -> tuple[Domain, SuiteDef] | None:
    """The domain that declares the named suite, and its definition; None when no domain does."""
    for domain in all_domains().values():
        for suite in domain.suites:
            if suite.name == name:
                return domain, suite
    return None


def all_suites() -> dict[str, tuple[Domain, SuiteDef]]:
    return {suite.name: (domain, suite) for domain in all_domains().values() for suite in domain.suites}


_UNREAD = object()
#: The $MDRL_DOMAINS value the plug-ins were last read for (_UNREAD before the first read).
_plugins_env: list[object] = [_UNREAD]


def _ensure_loaded() -> None:
    # The built-in domains are registered already: importing this module imports its package first,
    # whose __init__ imports every built-in domain file.
    # On the scoring path: the entry points are read once, $MDRL_DOMAINS again only when it changes
    env = os.environ.get(DOMAINS_ENV)
    if _plugins_env[0] == env:
        return
    first = _plugins_env[0] is _UNREAD
    _plugins_env[0] = env
    _load_plugins(first)


def _load_plugins(first: bool) -> None:
    """Entry points of the group `mdrl.domains` (the first time), then the modules in $MDRL_DOMAINS,
    each once."""
    from importlib.metadata import entry_points

    wanted: list[tuple[str, Callable[[], object]]] = []
    for point in entry_points(group=ENTRY_POINT_GROUP) if first else ():
        wanted.append((f"entry point {point.name} = {point.value}", point.load))
    for module in filter(None, (part.strip() for part in os.environ.get(DOMAINS_ENV, "").split(","))):
        wanted.append((f"{DOMAINS_ENV} module {module}", lambda module=module: importlib.import_module(module)))
    for label, load in wanted:
        if label in _loaded_plugins:
            continue
        _loaded_plugins.add(label)
        try:
            loaded = load()
            if callable(loaded) and not isinstance(loaded, type(os)):
                loaded()
        except Exception as exc:  # one broken plug-in must not take every other domain down
            _PLUGIN_ERRORS.append(f"{label}: {type(exc).__name__}: {exc}")
            log.error("domain plug-in %s failed to load: %s: %s", label, type(exc).__name__, exc)
