"""The supervisor's rules with stand-in workers (tiny Python processes speaking the link
protocol): back-off between restarts, giving up on a crash loop with a non-zero exit, and
killing a worker that ignores SIGTERM past the stop timeout."""

from __future__ import annotations

import asyncio
import signal
import sys

import pytest

from usermgmt_server.workers.supervisor import RestartPolicy

# Runs a Supervisor over the stand-in worker below; prints "all ready" once every worker is.
DRIVER = """
import asyncio, sys
from usermgmt_server.logging_setup import configure_logging
from usermgmt_server.workers.supervisor import RestartPolicy, Supervisor

configure_logging("INFO", "text")
worker = [sys.executable, "-c", sys.argv[1], sys.argv[2]]
policy = RestartPolicy(initial_backoff=0.05, max_backoff=0.2, crash_limit=3, window=60)
supervisor = Supervisor(
    worker, 2, stop_timeout=1.0, policy=policy,
    on_ready=lambda: print("all ready", flush=True),
)
sys.exit(asyncio.run(supervisor.run()))
"""

# argv: [-c, behaviour, --worker-index, I, --supervisor-fd, FD]. Worker 1 always behaves;
# worker 0 does what ``behaviour`` says once it has announced itself ready.
WORKER = """
import os, signal, sys, time
behaviour, index = sys.argv[1], int(sys.argv[3])
fd = int(sys.argv[sys.argv.index("--supervisor-fd") + 1])
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
os.write(fd, b"ready\\n")
if index == 0 and behaviour == "crash":
    time.sleep(0.2)
    sys.exit(3)
if index == 0 and behaviour == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
while True:
    time.sleep(1)
"""


async def start_driver(behaviour: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        DRIVER,
        WORKER,
        behaviour,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_a_crash_loop_ends_the_supervisor_with_a_failure() -> None:
    driver = await start_driver("crash")
    stdout, stderr = await asyncio.wait_for(driver.communicate(), 30)
    log = stderr.decode()
    assert driver.returncode == 1, log
    assert stdout.decode() == "all ready\n"
    # Three crashes are restarted with a doubling back-off; the fourth within the window ends it.
    assert log.count("worker exited unexpectedly; restarting") == 3
    assert "delay_s=0.05" in log and "delay_s=0.1" in log and "delay_s=0.2" in log
    assert "supervisor gives up: 4 worker crashes within 60 s (last: worker 0, exit code 3)" in log


async def test_a_worker_ignoring_sigterm_is_killed_after_the_stop_timeout() -> None:
    driver = await start_driver("stubborn")
    assert driver.stdout is not None
    assert await asyncio.wait_for(driver.stdout.readline(), 30) == b"all ready\n"
    driver.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(driver.communicate(), 30)
    log = stderr.decode()
    assert driver.returncode == 1, log
    assert "worker did not stop in time; killing it worker=0" in log
    assert "clean=False" in log


async def test_a_clean_stop_exits_zero() -> None:
    driver = await start_driver("behave")
    assert driver.stdout is not None
    assert await asyncio.wait_for(driver.stdout.readline(), 30) == b"all ready\n"
    driver.send_signal(signal.SIGINT)
    _, stderr = await asyncio.wait_for(driver.communicate(), 30)
    assert driver.returncode == 0, stderr.decode()
    assert "every worker stopped" in stderr.decode()


@pytest.mark.parametrize(("crashes", "seconds"), [(1, 0.5), (2, 1.0), (3, 2.0), (6, 10.0)])
def test_back_off_doubles_up_to_its_cap(crashes: int, seconds: float) -> None:
    assert RestartPolicy().backoff(crashes) == seconds
