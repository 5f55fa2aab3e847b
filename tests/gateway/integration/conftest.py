"""The gateway container and its configuration, as in the interface tier; the services behind
it are the real ones, started by each test on the gateway's vhost."""

from tests.gateway.interface.conftest import gateway, gateway_config  # noqa: F401 - fixtures
