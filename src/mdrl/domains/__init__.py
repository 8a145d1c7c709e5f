"""Built-in domains. Importing this package registers them; add a domain by adding one file and one
import line here."""

from mdrl.domains.base import DataError, Domain, Problem
from mdrl.domains.registry import (
    all_domains,
    domain_for_source,
    get_domain,
    known_sources,
    register_domain,
)
from mdrl.domains import code, countdown, knights_knaves, math, zebra  # noqa: F401,E402  (registration)

__all__ = [
    "DataError",
    "Domain",
    "Problem",
    "all_domains",
    "domain_for_source",
    "get_domain",
    "known_sources",
    "register_domain",
]
