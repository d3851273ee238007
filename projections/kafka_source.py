"""Projections fed from the relay's outbound topic instead of the local log (`lrs project
--source kafka`), so projectors scale apart from API nodes and ingesters.

Each poll is applied in one DuckDB transaction, then its offsets are committed. A message seen
twice (a crash between the two) changes nothing: facts already applied at its log position are
skipped, and alignment and roster loads replace what they load.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from kafka import KafkaConsumer

from projections.page_items import PageItems
from projections.runner import ProjectionRunner

log = logging.getLogger("lrs.projections.kafka")


def page_items(values: list[bytes]) -> tuple[PageItems, int]:
    """Turn relayed messages into page items, and the highest log position among them."""
    items = PageItems()
    position = 0
    for value in values:
        body: dict[str, Any] = orjson.loads(value)
        position = max(position, int(body["position"]))
        kind = body.get("type")
        if kind == "statement":
            items.add_statement(body["position"], body["statement"])
        elif kind == "alignments":
            items.add_alignments(body["position"], body["framework"], body["alignments"],
                                 body["parameters"])
        elif kind == "parameters":  # a fit: parameters only
            items.add_alignments(body["position"], f"fit: {body['method']}", [], body["parameters"])
        elif kind == "roster":
            items.add_roster(body["position"], body["entries"])
    return items, position


STORE_HEADER = "lrs-store"  # the relay's (lrs/relay.py); none means `default`


def store_of(headers: list[tuple[str, bytes]] | None) -> str:
    for key, value in headers or []:
        if key == STORE_HEADER:
            return value.decode("utf-8", "replace")
    return "default"


class KafkaProjectionSource:
    """Projects the messages of one store (``store``), skipping other stores' on a shared topic."""

    def __init__(self, runner: ProjectionRunner, bootstrap: str, topic: str,
                 group_id: str = "lrs-projector", store: str = "default") -> None:
        self.runner = runner
        self.store = store
        self.consumer = KafkaConsumer(
            topic, bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False,
            auto_offset_reset="earliest", max_poll_records=5000, client_id="lrs-projector")

    def poll_once(self, timeout_ms: int = 500) -> int:
        polled = self.consumer.poll(timeout_ms=timeout_ms)
        values = [record.value for records in polled.values() for record in records
                  if store_of(record.headers) == self.store]
        if not values:
            if polled:
                self.consumer.commit()  # other stores' messages only
            self.runner.refresh()
            return 0
        items, position = page_items(values)
        self.runner.apply_items(items, position, skip_known=True)
        self.consumer.commit()
        return len(values)

    def run(self) -> None:
        log.info("projecting from Kafka")
        try:
            while not self.runner.stop.is_set():
                try:
                    self.poll_once()
                except Exception:  # logged; nothing was committed, the poll is read again
                    log.exception("projection from Kafka failed")
                    for partition in self.consumer.assignment():
                        self.consumer.seek(partition, self.consumer.committed(partition) or 0)
                    self.runner.stop.wait(2.0)
        finally:
            self.consumer.close(autocommit=False)
