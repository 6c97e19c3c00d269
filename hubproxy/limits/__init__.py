"""Rate limits and key scopes, as addons to every call (see hubproxy.gateway.addons).

- `rates.RateLimits`: requests and tokens per minute and concurrent requests, per key and per
  user, over the sliding window of `window.Window`; refusals are 429 with OpenAI's
  x-ratelimit-* headers, which successful answers carry too.
- `scopes.KeyScopes`: a key's model allow-list (403) and its spend cap per UTC day or month
  (402), held like the balance and settled at the debit; `budgets.Budgets` keeps each key's
  spend. A key's expiry is checked at authentication (hubproxy.gateway.auth).
- `fields`: reading limits and scopes as the CLI and the admin API take them.

Everything is in memory and O(1) per call; the database is read only to load and follow.
"""

from hubproxy.limits.budgets import Budgets
from hubproxy.limits.rates import Limits, RateLimits
from hubproxy.limits.scopes import KeyScopes

__all__ = ["Budgets", "KeyScopes", "Limits", "RateLimits"]
