"""A real Kafka-protocol broker for tests: LRS_TEST_KAFKA, else noida-db on loopback, else
testcontainers. Under CI=true a missing broker fails the run."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _reachable(bootstrap: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000).close()
            return True
        except (KafkaError, OSError):
            time.sleep(0.3)
    return False


def _noida() -> str | None:
    return shutil.which("noida-db", path=str(Path(sys.executable).parent)) or shutil.which("noida-db")


def start_noida(binary: str, port: int, data_dir: str) -> subprocess.Popen[bytes]:
    """noida-db's command runs the broker as a child process: in a session of its own, so that
    stopping it stops the broker too (terminating the command alone left brokers running)."""
    return subprocess.Popen(
        [binary, "start", "--only", "kafka", "--kafka-port", str(port), "--data-dir", data_dir,
         "--host", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def stop_noida(process: subprocess.Popen[bytes]) -> None:
    """Stop the command and the broker it started (a process of its group that may outlive it)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            process.poll()  # reaps the command: a zombie still counts as a member of the group
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            continue
        break
    process.wait(timeout=30)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    given = os.environ.get("LRS_TEST_KAFKA")
    if given:
        yield given
        return
    binary = _noida()
    if binary is not None:
        port = _free_port()
        with tempfile.TemporaryDirectory(prefix="noida-") as data_dir:
            process = start_noida(binary, port, data_dir)
            try:
                bootstrap = f"127.0.0.1:{port}"
                if _reachable(bootstrap, 30):
                    yield bootstrap
                    return
            finally:
                stop_noida(process)
    try:
        from testcontainers.kafka import KafkaContainer  # Docker hosts only

        with KafkaContainer() as container:
            yield container.get_bootstrap_server()
            return
    except Exception as exc:
        message = f"no Kafka broker available: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def new_topic(bootstrap: str, prefix: str, partitions: int = 6) -> str:
    """A topic of the test's own, so tests sharing the broker never see each other's messages."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, name, partitions)
    return name


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        admin.close()


def read_topic(bootstrap: str, topic: str, expected: int, timeout_ms: int = 20_000) -> list[Any]:
    """Up to ``expected`` records from the start of a topic, as a fresh consumer group sees it."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             group_id=f"check-{uuid.uuid4().hex}", consumer_timeout_ms=timeout_ms)
    found = []
    for record in consumer:
        found.append(record)
        if len(found) >= expected:
            break
    consumer.close()
    return found
