"""Celery's Redis transport, with a connection pool that waits when it is full instead of failing.

Kombu's Redis channel hands its clients a redis-py ConnectionPool of `max_connections` (10) that raises
MaxConnectionsError once every connection is busy. A prefork child acknowledges one task at a time; the gevent runs
worker acknowledges each of up to 1,000 concurrent tasks from that task's greenlet, on the one consumer channel, and
bursts of more than ten at once failed ("Couldn't ack …, reason: MaxConnectionsError") — the message stayed in
Redis's unacked index, to be redelivered (stale by then) after the visibility timeout. A blocking pool of the same
size makes the eleventh ack wait a moment instead.

And one client per pool: kombu makes a new redis-py client for every publish and every ack, and redis-py builds
each client's ~170 response callbacks anew — a task's three monitoring events and its ack made that 7% of a runs
worker's CPU. A client is its pool and those callbacks, safe to share (each command takes a pooled connection).
"""

import redis
from kombu import transport
from kombu.transport import redis as kombu_redis

POOL_WAIT_SECONDS = 30  # a connection frees up in milliseconds; this long means Redis itself is stuck


class Channel(kombu_redis.Channel):
    def _get_pool(self, asynchronous: bool = False) -> redis.BlockingConnectionPool:
        params = self._connparams(asynchronous=asynchronous)  # type: ignore[no-untyped-call]
        self.keyprefix_fanout = self.keyprefix_fanout.format(db=params["db"])  # as kombu's own _get_pool does
        return redis.BlockingConnectionPool(timeout=POOL_WAIT_SECONDS, **params)

    def _create_client(self, asynchronous: bool = False) -> "redis.Redis[bytes]":
        if asynchronous:  # the consumer's own: kombu keeps it
            return super()._create_client(asynchronous=True)  # type: ignore[no-any-return, no-untyped-call]
        shared = self.__dict__.get("_shared_client")
        if shared is None or shared.connection_pool is not self.pool:  # a new pool after a reconnection
            shared = self.__dict__["_shared_client"] = super()._create_client()  # type: ignore[no-untyped-call]
        return shared  # type: ignore[no-any-return]


class Transport(kombu_redis.Transport):
    Channel = Channel


def install() -> None:
    """Make `redis://` and `rediss://` broker URLs use this transport, in this process.

    By alias rather than Celery's `broker_transport` setting: with that, the broker's URL reads
    `worker.broker:Transport://…`, which Flower cannot take for Redis (no queue lengths), and kombu, which turns
    on TLS by the name `rediss`, no longer would. Sentinel and socket URLs keep kombu's own transport."""
    for scheme in ("redis", "rediss"):
        transport.TRANSPORT_ALIASES[scheme] = f"{__name__}:Transport"
        transport._transport_cache.pop(scheme, None)  # resolved before this ran (nothing should have)
