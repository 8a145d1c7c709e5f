"""Built-in domains. Importing this package registers them; add a domain by adding one file and one
import line here."""

from mdrl.domains.base import DataError, Domain, Problem, Reader, SuiteDef
from mdrl.domains.registry import (
    Family,
    all_domains,
    all_suites,
    domain_for_source,
    find_suite,
    get_domain,
    groups,
    is_domain,
    known_sources,
    register_domain,
    register_family,
)
from mdrl.domains import code, countdown, knights_knaves, math, zebra  # noqa: F401,E402  (registration)
from mdrl.domains import reasoning_gym  # noqa: F401,E402  (the rg:<task> family, made on first use)

__all__ = [
    "DataError",
    "Domain",
    "Family",
    "Problem",
    "Reader",
    "SuiteDef",
    "all_domains",
    "all_suites",
    "domain_for_source",
    "find_suite",
    "get_domain",
    "groups",
    "is_domain",
    "known_sources",
    "register_domain",
    "register_family",
]
