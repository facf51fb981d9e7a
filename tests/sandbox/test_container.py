"""A code_interpreter container, attacked: each attempt contained and reported, the host unharmed."""

import base64
import os
import time
from pathlib import Path

import docker

from sandbox.container import Sandbox
from shared.config import get_settings


def test_state_files_and_figures(box: Sandbox) -> None:
    assert box.ready["preloaded"] == ["numpy", "pandas", "matplotlib"]
    assert box.run("x = 40").status == "ok"
    assert box.run("x + 2").logs == "42\n"
    box.put_files({"data.csv": b"a,b\n1,2\n3,4\n", "../../etc/evil": b"x"})
    out = box.run("import pandas as pd\ndf = pd.read_csv('data.csv')\ndf.sum().to_csv('sums.csv')\n"
                  "import matplotlib.pyplot as plt\nplt.plot(df.a, df.b)\nprint(sorted(os.listdir('.')))"
                  .replace("print(sorted", "import os\nprint(sorted"))
    assert out.status == "ok", out
    assert out.logs == "['data.csv', 'evil', 'sums.csv']\n"  # a name cannot escape /mnt/data
    assert base64.b64decode(out.images[0])[:4] == b"\x89PNG"
    assert box.get_files()["sums.csv"] == b",0\na,4\nb,6\n"


def test_no_network(box: Sandbox) -> None:
    out = box.run("import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=3)")
    assert out.status == "error" and out.error is not None and out.error["type"] in ("OSError", "TimeoutError")
    out = box.run("import socket\nsocket.getaddrinfo('deb.debian.org', 80)")
    assert out.status == "error"
    assert box.run("open('/proc/net/dev').read().count(':')").logs == "1\n"  # only the loopback interface


def test_cannot_write_outside_mnt_data_or_read_the_host(box: Sandbox, tmp_path: Path) -> None:
    marker = tmp_path / "host-secret"
    marker.write_text("host")
    for code in ("open('/etc/passwd', 'a')", "open('/usr/bin/x', 'w')", "open('/etc/shadow').read()",
                 f"open({str(marker)!r}).read()", "import os\nos.setuid(0)"):
        out = box.run(code)
        assert out.status == "error", (code, out)
    assert box.run("import os\nos.getuid()").logs == "10001\n"
    assert box.run("open('/proc/self/status').read().split('CapEff:')[1].split()[0]").logs == "'0000000000000000'\n"


def test_fork_bomb_is_contained(box: Sandbox) -> None:
    host_pids = len(os.listdir("/proc"))
    bomb = ("import os, time\npids = []\ntry:\n    while True:\n        pid = os.fork()\n        if pid == 0:\n"
            "            time.sleep(30)\n            os._exit(0)\n        pids.append(pid)\n"
            "except OSError as e:\n    print('stopped at', len(pids))\nfor p in pids:\n    os.kill(p, 9)\n")
    out = box.run(bomb, timeout=20)
    if get_settings().sandbox_runtime == "runsc":
        # gVisor accounts each forked copy of the warm interpreter against the memory limit, which stops the
        # bomb first: the container's OOM kill, reported as such, and the session restarts.
        assert out.status == "oom" and out.reset, out
    else:
        assert out.status == "ok" and out.logs.startswith("stopped at "), out
        assert int(out.logs.split()[2]) < 128  # the pids limit stopped it
        assert box.run("1 + 1").logs == "2\n"
    box.destroy()
    deadline = time.monotonic() + 10  # and the host's process table is back to normal once the session ends
    while len(os.listdir("/proc")) > host_pids + 20 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(os.listdir("/proc")) <= host_pids + 20


def test_memory_bomb_is_an_oom_the_user_understands(box: Sandbox) -> None:
    out = box.run("xs = []\nwhile True:\n    xs.append(bytearray(50 << 20))")
    assert out.status == "oom" and out.reset and not box.alive
    assert out.error is not None and out.error["type"] == "MemoryError"
    assert "ran out of memory (limit 512 MB)" in out.error["message"]


def test_filling_the_disk_is_refused(box: Sandbox) -> None:
    out = box.run("f = open('big', 'wb')\nfor _ in range(400):\n    f.write(b'x' * (1 << 20))\nf.close()")
    assert out.status == "error" and out.error is not None and out.error["type"] == "OSError", out
    out = box.run("import os\nos.remove('big')\nopen('/tmp/t', 'wb').write(b'x' * (80 << 20))")
    assert out.status == "error", out  # /tmp is a small tmpfs too
    assert box.run("'alive'").logs == "'alive'\n"


def test_infinite_loops_time_out(box: Sandbox) -> None:
    box.run("kept = 1")
    out = box.run("while True:\n    pass", timeout=1)
    assert out.status == "timeout" and out.error is not None
    assert out.error["message"] == "execution timed out after 1 s" and not out.reset
    assert box.run("kept").logs == "1\n"
    # Code that disarms the soft timeout meets the hard deadline: the container is killed.
    started = time.monotonic()
    out = box.run("import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass", timeout=1)
    assert out.status == "timeout" and out.reset and time.monotonic() - started < 15
    assert not box.alive


def test_sessions_do_not_share_files(docker_client: docker.DockerClient) -> None:
    a = Sandbox.start(labels={"assistants.thread": "thread_a"}, docker_client=docker_client)
    b = Sandbox.start(labels={"assistants.thread": "thread_b"}, docker_client=docker_client)
    try:
        a.put_files({"mine.txt": b"a's"})
        assert b.run("import os\nos.listdir('.')").logs == "[]\n"
        assert "mine.txt" not in b.get_files()
    finally:
        a.destroy()
        b.destroy()


def test_the_configured_runtime_runs_the_sandbox(box: Sandbox) -> None:
    runtime = get_settings().sandbox_runtime or "runc"
    box.container.reload()
    assert box.container.attrs["HostConfig"]["Runtime"] == runtime
    kernel = box.run("open('/proc/version').read()").logs
    assert ("4.4.0" in kernel) == (runtime == "runsc"), kernel  # gVisor's own kernel answers, not the host's
