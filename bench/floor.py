"""The floor: the least CPU one Python process can spend on a delivery of scenario 1.

What the naive loop and the Quix app do, and what any Python service delivering these events
pays for, with nothing else: records consumed in batches of up to 2,000, each decoded (orjson),
mapped and signed as the peers do (`workload.render_and_sign`), POSTed over a fixed set of
keep-alive connections (a bare asyncio protocol with httptools, on uvloop), and a result
record produced without a flush; a batch's offsets are committed once all of it is answered.
One thread, no retries, no limits, no dead letters, no destination guard, no metrics, no
attempt records: no guarantee the dispatcher keeps. Its CPU per delivery is the part of the
dispatcher's that the Kafka client, JSON, HMAC, the event loop and the sockets take; the rest
is what the dispatcher's guarantees cost. Not a product: a yardstick.

Run as `python -m bench.floor BOOTSTRAP TOPIC GROUP RESULTS URL TIMEOUT`, as the naive loop
is (TIMEOUT unused: scenario 1's nginx answers at once, and the floor has no timer per
request); SIGTERM stops it.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httptools
import orjson
import uvloop
from confluent_kafka import Producer

from bench.kafka import committing_consumer
from bench.workload import render_and_sign, result

HOOK_ID = "floor"
BATCH = 2000
CONNECTIONS = 100  # as many as the dispatcher's hook in scenario 1 may use


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: a request written, its status read."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("closed"))

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(self.parser.get_status_code())

    async def exchange(self, request: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter


class Sender:
    """The hook's URL as request bytes, and the connections to it."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.head = f"POST {parts.path or '/'} HTTP/1.1\r\nhost: {parts.netloc}\r\n".encode()

    async def connect(self) -> Connection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(Connection, self.host, self.port)
        return connection

    def request(self, body: bytes, headers: dict[str, str]) -> bytes:
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        return b"%s%scontent-length: %d\r\n\r\n%s" % (self.head, lines.encode(), len(body), body)

    async def deliver_from(
        self, connection: Connection, messages: Iterator[Any], producer: Producer, topic: str
    ) -> Connection:
        """Deliver messages from the shared iterator one after another; returns the connection
        to use next (a new one where this one failed)."""
        for message in messages:
            event = orjson.loads(message.value())
            body, headers = render_and_sign(event, HOOK_ID, orjson.dumps)
            if connection.transport is None:  # the server closed it after its last answer
                connection = await self.connect()
            status: int | None
            try:  # no timeout: scenario 1's nginx answers at once
                status = await connection.exchange(self.request(body, headers))
            except (OSError, httptools.HttpParserError):
                status = None
                if connection.transport is not None:
                    connection.transport.close()
                connection = await self.connect()
            producer.produce(topic, orjson.dumps(result(event, HOOK_ID, status)))
        return connection


async def run(bootstrap: str, topic: str, group: str, results: str, url: str) -> None:
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    consumer = committing_consumer(bootstrap, group, topic)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    sender = Sender(url)
    connections = [await sender.connect() for _ in range(CONNECTIONS)]
    while not stopping.is_set():
        messages = consumer.consume(BATCH, 0) or consumer.consume(1, 0.1)
        messages = [m for m in messages if m.error() is None]
        if messages:
            shared = iter(messages)
            connections = await asyncio.gather(
                *(sender.deliver_from(c, shared, producer, results) for c in connections)
            )
            consumer.commit(asynchronous=True)  # every record consumed so far is answered
        producer.poll(0)
        await asyncio.sleep(0)  # SIGTERM's handler runs on the loop
    producer.flush(10)
    consumer.close()


if __name__ == "__main__":
    bootstrap, topic, group, results, url = sys.argv[1:6]  # and the timeout: none here
    uvloop.run(run(bootstrap, topic, group, results, url))
