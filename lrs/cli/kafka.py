"""`lrs ingest kafka` and `lrs relay kafka`: the Kafka processes of a deployment at scale."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from lrs.application import LearningRecordStore
from lrs.cli.common import settings_from, tune_gc
from lrs.config import DEFAULT_STORE


def _stop_on_signals(stop: threading.Event) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())


def cmd_ingest_kafka(args: argparse.Namespace) -> int:
    from ingest.kafka_consumer import KafkaIngestConfig, KafkaIngester, MessageIngest
    from lrs.auth import CredentialDirectory
    from lrs.store_logs import StoreLogs

    settings = settings_from(args)
    config = KafkaIngestConfig(bootstrap=args.bootstrap, topic=args.topic, group_id=args.group,
                               dead_letter_topic=args.dead_letter_topic or "",
                               max_message_bytes=args.max_message_bytes,
                               instance_id=args.instance_id,
                               commit_interval_ms=args.commit_interval_ms,
                               max_batch_statements=settings.max_batch_statements)
    # The `default` store's log holds every credential; each message's decides its store.
    store = LearningRecordStore(env=settings.for_store(DEFAULT_STORE).event_store_env())
    logs = StoreLogs(settings, store)
    credentials = CredentialDirectory(store, settings.authority_home_page)
    ingester = KafkaIngester(MessageIngest(store, credentials, config, logs), config)
    _stop_on_signals(ingester.stop)
    tune_gc()
    ingester.run()
    logging.getLogger("lrs.ingest.kafka").info(
        "stopped: %d statements stored, %d messages dead-lettered", ingester.stored,
        ingester.dead_lettered)
    logs.close()
    store.close()
    return 0


def cmd_relay_kafka(args: argparse.Namespace) -> int:
    from lrs.relay import KafkaRelay

    settings = settings_from(args)
    store = LearningRecordStore(env=settings.event_store_env())
    relay = KafkaRelay(store, store.factory.tracking_recorder(), args.bootstrap, args.topic,
                       name=args.name, store_name=settings.store)
    _stop_on_signals(relay.stop)
    relay.run()
    store.close()
    return 0


def add_commands(commands: Any, store_options: Callable[..., None]) -> None:
    ingest = commands.add_parser("ingest", help="take statements in from a broker")
    sources = ingest.add_subparsers(dest="source", required=True)
    kafka_in = sources.add_parser("kafka", help="consume statements from a Kafka topic")
    kafka_in.add_argument("--bootstrap", required=True, help="host:port[,host:port]")
    kafka_in.add_argument("--topic", required=True, help="topic of incoming statements")
    kafka_in.add_argument("--group", default="lrs-ingest", help="consumer group id")
    kafka_in.add_argument("--dead-letter-topic", help="default: TOPIC.dead-letter")
    kafka_in.add_argument("--max-message-bytes", type=int, default=1024 * 1024)
    kafka_in.add_argument("--instance-id", help="static group membership: a restart with the same"
                          " id takes its partitions back at once (e.g. the pod name)")
    kafka_in.add_argument("--commit-interval-ms", type=int, default=1_000,
                          help="commit offsets of appended messages this often; after a crash or"
                          " a rebalance about this much is read again, and ignored")
    store_options(kafka_in, tenant=False)  # each message's credential decides its store
    kafka_in.set_defaults(func=cmd_ingest_kafka)

    relay = commands.add_parser("relay", help="publish the event log to a broker")
    targets = relay.add_subparsers(dest="target", required=True)
    kafka_out = targets.add_parser("kafka", help="publish accepted events to a Kafka topic")
    kafka_out.add_argument("--bootstrap", required=True, help="host:port[,host:port]")
    kafka_out.add_argument("--topic", default="lrs.events", help="outbound topic")
    kafka_out.add_argument("--name", default="relay-kafka", help="name of the saved position")
    store_options(kafka_out)
    kafka_out.set_defaults(func=cmd_relay_kafka)
