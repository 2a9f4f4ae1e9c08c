"""Values a stack can validly hold but that cannot be meant for production.

The example stacks use documentation addresses and reserved domains on purpose
(RFC 5737, RFC 2606): copied into a real stack, an admin range nobody's address
is in locks the operator out of the servers, a `.example` domain is checked and
alerted on forever, and a bucket prefix another agency also has collides in
S3's global namespace. `carestack validate` warns about them (it does not fail:
the lab and the examples use them on purpose).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from infra.spec import NAMESPACE, Catalog, ClientSpec, StackSpec

DOCUMENTATION_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)
# Reserved for examples and tests (RFC 2606, RFC 6761): nobody can own a name under them.
RESERVED_TLDS = ("example", "test", "invalid", "localhost")
EXAMPLE_DOMAINS = ("example.com", "example.net", "example.org")


def documentation_network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    network = ipaddress.ip_network(cidr)
    return next((n for n in DOCUMENTATION_NETWORKS if n.version == network.version and network.overlaps(n)), None)


def example_domain(domain: str) -> bool:
    name = domain.lower().rstrip(".")
    return name.rsplit(".", 1)[-1] in RESERVED_TLDS or any(name == d or name.endswith("." + d) for d in EXAMPLE_DOMAINS)


def _admin_cidr(cidr: str) -> list[str]:
    network = documentation_network(cidr)
    if network is None:
        return []
    return [
        f"{NAMESPACE}:admin_cidr: {cidr} is in the documentation range {network}, where no real address is: "
        "SSH to the servers would be open to nobody, the operator included; set the agency's own range"
    ]


def stack_warnings(spec: StackSpec) -> list[str]:
    """`key: message` for each value of this stack that cannot be meant for production."""
    warnings = _admin_cidr(spec.stack.admin_cidr)
    if not isinstance(spec, ClientSpec):
        return warnings
    for index, site in enumerate(spec.stack.sites):
        if example_domain(site.domain):
            warnings.append(
                f"{NAMESPACE}:sites[{index}].domain: {site.domain} is an example domain that nobody can own: "
                "its pages cannot be reached, so its monitors would alert from the first check"
            )
    for index, contact in enumerate(spec.stack.contacts):
        where = f"{NAMESPACE}:contacts[{index}]"
        if contact.email and example_domain(contact.email.rsplit("@", 1)[-1]):
            warnings.append(f"{where}.email: {contact.email} is at an example domain: alerts to it reach nobody")
        if contact.webhook and example_domain(urlsplit(contact.webhook).hostname or ""):
            warnings.append(f"{where}.webhook: {contact.webhook} is at an example domain: alerts to it reach nobody")
    return warnings


def catalog_warnings(catalog: Catalog) -> list[str]:
    """The agency's settings that cannot be meant for production."""
    warnings = []
    prefix = catalog.agency.bucket_prefix
    if "example" in prefix:
        warnings.append(
            f"agency.bucket_prefix: {prefix!r} is the example catalog's; S3 bucket names are global, so "
            f"{prefix}-<client>-backups may already be another agency's; choose the agency's own prefix"
        )
    email = catalog.agency.acme.email
    if email and example_domain(email.rsplit("@", 1)[-1]):
        warnings.append(
            f"agency.acme.email: {email} is at an example domain: the CA's notices about the agency's "
            "ACME account reach nobody"
        )
    return warnings
