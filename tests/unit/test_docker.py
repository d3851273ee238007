"""The deployment files, checked without a Docker engine: they parse and call real commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lrs.cli.main import build_parser

DOCKER = Path(__file__).resolve().parents[2] / "docker"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DOCKER / "compose.yaml").read_text()))


def lrs_services(compose: dict[str, Any]) -> dict[str, Any]:
    return {name: s for name, s in compose["services"].items() if s.get("image") == "lrs:latest"}


def test_compose_has_every_part_of_a_multi_node_deployment(compose: dict[str, Any]) -> None:
    assert {"postgres", "kafka", "api", "ingest", "relay", "projector"} <= set(compose["services"])
    assert compose["services"]["api"]["deploy"]["replicas"] == 2


def test_kafka_runs_in_kraft_mode_without_zookeeper(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]["environment"]
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "zookeeper" not in compose["services"]


def test_every_command_compose_runs_exists_in_the_cli(compose: dict[str, Any]) -> None:
    parser = build_parser()
    services = lrs_services(compose)
    assert len(services) == 4
    for name, service in services.items():
        args = parser.parse_args(service["command"])  # exits on an unknown command or flag
        assert callable(args.func), name


def test_lrs_services_are_wired_to_postgresql(compose: dict[str, Any]) -> None:
    for service in lrs_services(compose).values():
        assert service["environment"]["LRS_EVENT_STORE"].startswith("postgresql://")


def test_api_replicas_share_one_secret_key_for_more_links(compose: dict[str, Any]) -> None:
    keys = {service["environment"].get("LRS_SECRET_KEY") for service in lrs_services(compose).values()}
    assert len(keys) == 1 and None not in keys


def test_dockerfile_is_multi_stage_non_root_and_has_a_healthcheck() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert dockerfile.count("\nFROM ") + dockerfile.startswith("FROM ") >= 2
    assert "\nUSER lrs" in dockerfile
    assert "HEALTHCHECK" in dockerfile and "/xAPI/about" in dockerfile
