"""Sandbox tests need a Docker engine and the sandbox image (`make sandbox-deps sandbox-image` provides both).
They label their containers with a namespace of their own, so they never touch a running stack's sandboxes."""

import os
import socket
import subprocess
import time
from collections.abc import Iterator

import docker
import pytest
import redis

os.environ["SANDBOX_NAMESPACE"] = "tests-sandbox"

from sandbox.container import LABEL, NAMESPACE_LABEL, Sandbox
from shared.config import get_settings


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    dc = docker.from_env()
    dc.ping()  # fails loudly (no skip) when the engine is missing: the Makefile installs and starts it
    dc.images.get(get_settings().sandbox_image)
    return dc


@pytest.fixture
def box(docker_client: docker.DockerClient) -> Iterator[Sandbox]:
    b = Sandbox.start(labels={"assistants.thread": "thread_test"}, docker_client=docker_client)
    yield b
    b.destroy()


@pytest.fixture(scope="session", autouse=True)
def no_leftovers(docker_client: docker.DockerClient) -> Iterator[None]:
    yield
    left = docker_client.containers.list(all=True, filters={"label": [LABEL, f"{NAMESPACE_LABEL}=tests-sandbox"]})
    assert left == [], f"sandbox containers left behind: {[c.name for c in left]}"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[redis.Redis]:
    """A private Redis (Debian's redis-server) for the pool's claims."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    yield client
    proc.kill()
    proc.wait()
