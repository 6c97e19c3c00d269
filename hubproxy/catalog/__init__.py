"""The control plane: providers, credentials sealed with AES-GCM, the model catalogue, aliases
and passive health, kept as live data and served from an in-memory snapshot.

Exports what the gateway core consumes: the snapshot (`Catalog`, `Route`), the pool
(`CredentialPool`, `Credential`), the running holder (`LiveCatalog`), `Health`,
`check_model_name` and the connect-time SSRF guard (`GuardedResolver`).
"""

from hubproxy.catalog.credentials import Credential, CredentialPool
from hubproxy.catalog.health import Health
from hubproxy.catalog.live import LiveCatalog
from hubproxy.catalog.names import check_model_name
from hubproxy.catalog.snapshot import Catalog, ProviderEntry
from hubproxy.catalog.ssrf import GuardedResolver
from hubproxy.gateway.routing import Route

__all__ = [
    "Catalog",
    "Credential",
    "CredentialPool",
    "GuardedResolver",
    "Health",
    "LiveCatalog",
    "ProviderEntry",
    "Route",
    "check_model_name",
]
