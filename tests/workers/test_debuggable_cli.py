"""The worker tests' command line says where it waits when asked (``debuggable_cli.py``):
a worker that hangs on CI must leave its stacks in the failure, not just "timed out"."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

from .test_workers import CLI


def test_the_tests_command_line_dumps_its_threads_and_its_tasks_on_signals() -> None:
    process = subprocess.Popen(  # noqa: S603 - our own command line, fixed arguments
        [*CLI, "sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    ended = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line.rstrip())
            if line.startswith("--- end of tasks"):
                ended.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert process.stdout is not None
        assert re.search(r"on http://127\.0\.0\.1:\d+ ", process.stdout.readline()), lines
        process.send_signal(signal.SIGUSR1)
        process.send_signal(signal.SIGUSR2)
        assert ended.wait(60), lines
    finally:
        process.kill()
        process.wait(30)
        reader.join(30)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()
    output = "\n".join(lines)
    # faulthandler's dump of the main thread, idle in the event loop's select
    assert re.search(r"(Current thread|Thread) 0x[0-9a-f]+ \(most recent call first\)", output)
    assert "run_forever" in output or "_run_once" in output, output
    # the tasks' awaits, down to the sandbox's own coroutine that waits to be stopped
    assert re.search(r"--- \d+ asyncio tasks:", output), output
    sandbox = str(Path(sys.modules["messaging_async"].__file__ or "").parent)
    assert f'File "{sandbox}' in output, output
