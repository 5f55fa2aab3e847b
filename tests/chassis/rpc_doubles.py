"""A caller of a service that never answers: its ``rpc-mute`` queue exists (declared here, as if
the service had run once) but nobody consumes it, so every request waits there to be read."""

from __future__ import annotations

from kombu import Connection, Exchange, Queue
from nameko.dependency_providers import Config
from nameko.testing.services import dummy

from mpp_chassis.calls import BoundedRpcProxy

MUTE_QUEUE = Queue(
    "rpc-mute",
    Exchange("nameko-rpc", type="topic", durable=True),
    routing_key="mute.*",
    durable=True,
)


class MuteCaller:
    name = "mutecaller"
    config = Config()
    mute_rpc = BoundedRpcProxy("mute")

    @dummy
    def ask(self, word: str) -> str:
        return self.mute_rpc.listen(word)


def declare_mute_queue(amqp_uri: str) -> Queue:
    with Connection(amqp_uri) as conn:
        MUTE_QUEUE(conn).declare()
    return MUTE_QUEUE
