"""``choose_trust``: what the pool a transport builds trusts, as one table of settings.

The loopback proof of each row, on every flavour, is ``tests/drivers/test_tls_trust.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from kneo_proto import KneoConfigurationError
from kneo_proto._trust import Trust, choose_trust

BUNDLE = "/etc/kneo/ca.pem"

# (verify, ca_bundle, ssl_context given, caller's client) -> what is trusted
CHOICES: list[tuple[bool, str | None, bool, Any, Trust]] = [
    (True, None, False, None, Trust.DEFAULT),
    (True, BUNDLE, False, None, Trust.CA_BUNDLE),
    (True, None, True, None, Trust.SSL_CONTEXT),
    (True, BUNDLE, True, None, Trust.SSL_CONTEXT),  # the caller's context wins
    (True, None, False, "http_client", Trust.CALLERS_CLIENT),
    (True, BUNDLE, False, "http_client", Trust.CALLERS_CLIENT),  # the bundle is not applied
    (True, BUNDLE, False, "driver", Trust.CALLERS_CLIENT),
    (False, None, False, None, Trust.NOTHING),
]

# (verify, ca_bundle, ssl_context given, caller's client) -> what the error names
REFUSED: list[tuple[Any, str | None, bool, Any, str]] = [
    (False, BUNDLE, False, None, "ca_bundle"),
    (False, None, True, None, "ssl_context"),
    (False, BUNDLE, True, None, "ca_bundle"),
    (False, None, False, "http_client", "http_client"),
    (False, None, False, "driver", "driver"),
    (True, None, True, "http_client", "http_client"),
    (True, None, True, "driver", "driver"),
    ("/etc/kneo/ca.pem", None, False, None, "not str"),
    (0, None, False, None, "not int"),
    (None, None, False, None, "not NoneType"),
]


@pytest.mark.parametrize(("verify", "bundle", "context", "client", "trusted"), CHOICES)
def test_choose_trust_picks_the_most_specific_setting(
    verify: bool, bundle: str | None, context: bool, client: Any, trusted: Trust
) -> None:
    chosen = choose_trust(
        verify=verify, ca_bundle=bundle, ssl_context=context, callers_client=client
    )
    assert chosen is trusted


@pytest.mark.parametrize(("verify", "bundle", "context", "client", "named"), REFUSED)
def test_choose_trust_refuses_settings_that_contradict_or_would_be_ignored(
    verify: Any, bundle: str | None, context: bool, client: Any, named: str
) -> None:
    with pytest.raises(KneoConfigurationError, match=named):
        choose_trust(verify=verify, ca_bundle=bundle, ssl_context=context, callers_client=client)
