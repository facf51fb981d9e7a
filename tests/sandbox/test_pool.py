"""Thread-bound sessions from a warm pool."""

import json
import threading
import time
import uuid
from collections.abc import Iterator

import docker
import pytest
import redis

from sandbox.container import remove_namespace
from sandbox.pool import SLOT_GRACE_SECONDS, AtCapacity, Pool, thread_container_name
from shared.config import get_settings


@pytest.fixture
def pool(docker_client: docker.DockerClient, redis_server: redis.Redis) -> Iterator[Pool]:
    yield Pool(docker_client, redis_server)
    remove_namespace(get_settings().sandbox_namespace, docker_client)


def thread_id() -> str:
    return f"thread_{uuid.uuid4().hex[:12]}"


def test_a_session_from_the_pool_is_fast_and_keeps_state(pool: Pool, docker_client: docker.DockerClient) -> None:
    assert pool.warm(2) == 2 and pool.warm(2) == 0
    t = thread_id()
    started = time.monotonic()
    box, new = pool.session(t)
    out = box.run("import numpy\nx = 7\nprint(1)")
    first_call = time.monotonic() - started
    assert new and out.logs == "1\n" and first_call < 1.0, first_call  # no container start, no imports
    box.detach()
    again, new = pool.session(t)  # e.g. another worker, the next run on the thread
    assert not new and again.container.id == box.container.id
    assert again.run("x * 6").logs == "42\n"
    again.detach()
    assert len(pool.free()) == 1
    other, _ = pool.session(thread_id())
    assert other.container.id != box.container.id  # never shared between threads
    assert other.run("'x' in dir()").logs == "False\n"
    other.detach()
    pool.end(t)
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(thread_container_name(t))


def test_racing_workers_give_each_thread_one_container(pool: Pool) -> None:
    pool.warm(1)
    threads = [thread_id() for _ in range(3)]
    got: dict[str, str] = {}
    lock = threading.Lock()

    def take(t: str) -> None:
        box, _ = pool.session(t)
        with lock:
            got[t] = box.container.id
        box.detach()

    workers = [threading.Thread(target=take, args=(t,)) for t in threads]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(set(got.values())) == 3  # one claimed from the pool, the others started cold


def test_a_reply_meant_for_a_dead_worker_is_skipped(pool: Pool) -> None:
    t = thread_id()
    box, _ = pool.session(t)
    # A worker sends a request and dies before reading the answer.
    box._sock._sock.sendall((json.dumps({"id": "lost", "code": "import time\ntime.sleep(0.3)\n'old'"}) + "\n")
                            .encode())
    box.detach()
    fresh, new = pool.session(t)
    assert not new
    assert fresh.run("'new'").logs == "'new'\n"
    fresh.detach()


def test_reaper_ends_idle_old_and_dead_sessions(pool: Pool, docker_client: docker.DockerClient) -> None:
    busy, idle, dead = thread_id(), thread_id(), thread_id()
    for t in (busy, idle, dead):
        box, _ = pool.session(t)
        box.detach()
        pool.touch(t)
    pool.warm(1)
    docker_client.containers.get(thread_container_name(dead)).kill()
    now = time.time()
    pool.redis.set(f"sandbox:used:{thread_container_name(idle)}", str(now - pool.settings.sandbox_idle_seconds - 1))
    gone = pool.reap(now)
    assert sorted(gone) == sorted([thread_container_name(idle), thread_container_name(dead)])
    assert docker_client.containers.get(thread_container_name(busy)).status == "running"
    assert len(pool.free()) == 1
    # Past their total lifetime, sessions and pool containers alike are ended.
    assert len(pool.reap(now + pool.settings.sandbox_max_age_seconds + 1)) == 2


def test_the_session_cap_is_shared_and_freed(docker_client: docker.DockerClient, redis_server: redis.Redis) -> None:
    settings = get_settings().model_copy(update={"sandbox_max_sessions": 2})
    a, b = Pool(docker_client, redis_server, settings), Pool(docker_client, redis_server, settings)  # two workers
    try:
        one, two, three = thread_id(), thread_id(), thread_id()
        a.session(one)[0].detach()
        b.session(two)[0].detach()
        with pytest.raises(AtCapacity):
            a.session(three)
        b.session(one)[0].detach()  # a thread that has its session is never refused
        assert a.live_sessions() == 2
        b.end(one)
        a.session(three)[0].detach()
        # A session removed behind the pool's back (or a worker that died starting one) frees its slot once
        # the reaper sees it gone.
        docker_client.containers.get(thread_container_name(two)).remove(force=True)
        a.reap()
        assert a.live_sessions() == 2  # within the grace period a slot may belong to a container being started
        a.reap(time.time() + SLOT_GRACE_SECONDS + 1)
        assert a.live_sessions() == 1  # `three` still holds its slot
    finally:
        remove_namespace(settings.sandbox_namespace, docker_client)
        redis_server.delete(a.slots_key)


def test_concurrent_maintainers_fill_the_pool_once(docker_client: docker.DockerClient,
                                                   redis_server: redis.Redis) -> None:
    """A worker starting while the beat ticks: two maintenance runs at once leave exactly `size` warm containers."""
    pools = [Pool(docker_client, redis_server) for _ in range(3)]
    try:
        results: list[dict[str, object]] = []
        threads = [threading.Thread(target=lambda p=p: results.append(p.maintain(2))) for p in pools]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(int(r["warmed"]) for r in results) == [0, 0, 2]  # type: ignore[call-overload]
        assert len(pools[0].free()) == 2
    finally:
        remove_namespace(get_settings().sandbox_namespace, docker_client)
