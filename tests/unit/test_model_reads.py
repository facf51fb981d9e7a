"""How a streamed answer's body is read (worker/model.py's _Body): SSE payloads whatever the chunking, the body
read to its end after [DONE], and reads paced once text flows — the first token never held back."""

from worker.model import _Body


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self.paused_at: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.paused_at.append(self.now)
        self.now += seconds


class Response:
    """Chunks as the server sends them: (seconds the read waits for it, bytes)."""

    def __init__(self, clock: Clock, chunks: list[tuple[float, bytes]]) -> None:
        self.clock, self.chunks, self.read = clock, chunks, 0

    def read1(self) -> bytes:
        """What has come (waiting for the next piece if nothing has); b"" at the end."""
        if self.read == len(self.chunks):
            return b""
        wait, raw = self.chunks[self.read]
        self.clock.now += wait
        self.read += 1
        return raw


def body(clock: Clock, chunks: list[tuple[float, bytes]], pace: float = 0.1) -> tuple[_Body, Response]:
    response = Response(clock, chunks)
    return _Body(response.read1, pace, clock=lambda: clock.now, sleep=clock.sleep), response


def data(n: int) -> bytes:
    return f'data: {{"n": {n}}}\n\n'.encode()


def test_payloads_whatever_the_chunking_and_the_body_read_to_its_end() -> None:
    clock = Clock()
    whole = data(1) + b": a comment\r\n" + data(2) + b"data: [DONE]\n\n" + b": what a server sends after\n\n"
    split = [(0.0, whole[i:i + 7]) for i in range(0, len(whole), 7)]
    reader, response = body(clock, split)
    assert list(reader.data()) == ['{"n": 1}', '{"n": 2}']
    assert response.read == len(split)  # the terminator too: the connection goes back to the pool
    assert clock.slept == []  # nothing flowed: never paced


def test_a_body_ending_without_done_or_its_last_newline() -> None:
    reader, _ = body(Clock(), [(0.0, data(1)), (0.0, b'data: {"n": 2}')])
    assert list(reader.data()) == ['{"n": 1}', '{"n": 2}']


def test_reads_pause_after_waiting_once_text_has_flowed_a_while() -> None:
    clock = Clock()
    # The first token after the model thought, then one every 20 ms, as a real model streams.
    chunks = [(0.5, data(0)), *[(0.02, data(n)) for n in range(1, 12)], (0.0, b"data: [DONE]\n\n")]
    reader, _ = body(clock, chunks)
    seen: list[tuple[str, float]] = []
    for payload in reader.data():
        seen.append((payload, clock.now))
        reader.flowing = True
    assert [p for p, _ in seen] == [f'{{"n": {n}}}' for n in range(12)]
    assert seen[0][1] == 0.5  # the first token is not held back
    # Pauses only after text has flowed for a whole pace (from 0.5 s), then after every read that waited.
    assert clock.paused_at and min(clock.paused_at) >= 0.6 - 1e-9
    assert len(clock.slept) >= 4 and set(clock.slept) == {0.1}


def test_an_answer_in_one_burst_is_never_held_back() -> None:
    clock = Clock()
    reader, _ = body(clock, [(0.3, data(0)), *[(0.005, data(n)) for n in range(1, 15)],
                             (0.0, b"data: [DONE]\n\n")])
    for _ in reader.data():
        reader.flowing = True
    assert clock.slept == []


def test_no_pacing_when_deltas_are_not_coalesced() -> None:
    clock = Clock()
    reader, _ = body(clock, [(0.02, data(n)) for n in range(3)], pace=0)
    for _ in reader.data():
        reader.flowing = True
    assert clock.slept == []
