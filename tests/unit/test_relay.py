"""The API's stream relay hands each run's entries to its followers in order, none twice, none skipped — also to a
follower that joins, resuming from an older event, while a read is under way."""

import asyncio

from api.relay import Follower, Relay, id_key, pause_after


def entries(*ids: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    return [(i.encode(), {b"event": b"e", b"data": i.encode()}) for i in ids]


def drain(f: Follower) -> list[str]:
    out = []
    while not f.queue.empty():
        out.append(f.queue.get_nowait()[0])
    return out


def test_a_follower_resuming_during_a_read_gets_every_entry_in_order() -> None:
    async def scenario() -> None:
        relay = Relay()
        live = Follower("r1", "1-2")
        relay.followers["r1"] = {live}
        relay._cursors["run:r1:events"] = "1-2"
        # A read from 1-2 is under way when a client resumes from 1-0.
        resuming = Follower("r1", "1-0")
        relay.followers["r1"].add(resuming)
        relay._cursors["run:r1:events"] = "1-0"
        relay._deliver("run:r1:events", id_key("1-2"), entries("1-3", "1-4"))
        assert drain(live) == ["1-3", "1-4"]
        assert drain(resuming) == []  # not from this read: it started past what this follower still needs
        assert relay._cursors["run:r1:events"] == "1-0"  # the next read goes back for it
        relay._deliver("run:r1:events", id_key("1-0"), entries("1-1", "1-2", "1-3", "1-4", "1-5"))
        assert drain(resuming) == ["1-1", "1-2", "1-3", "1-4", "1-5"]
        assert drain(live) == ["1-5"]  # nothing twice
        assert relay._cursors["run:r1:events"] == "1-5"

    asyncio.run(scenario())


def test_event_ids_are_compared_as_numbers() -> None:
    assert id_key("10-0") > id_key("9-99") and id_key("5") == (5, 0)


def test_reads_pause_under_load_only() -> None:
    assert pause_after(found_entries=False, streams=100) == 0.0  # it blocked: entries come as they arrive
    assert pause_after(found_entries=True, streams=1) == 0.001  # one client, one run: no wait worth noting
    assert pause_after(found_entries=True, streams=20) == 0.02
    assert pause_after(found_entries=True, streams=500) == 0.04  # bounded, below the workers' 0.1 s text flush
