"""The grader's handle on a zygote (:mod:`.zygote`): start it, wait until it is ready, stop it.

Imports nothing heavy: the zygote's own imports (torch, ipykernel) happen in its process,
while the grader does its own start-up.
"""
import os
import subprocess
import sys
import time

from .jail import sandbox_env


class Zygote:
    """A running zygote, started by the grader: ``with Zygote(folder) as z: ... z.path``."""

    def __init__(self, folder, wait=True):
        """``wait=False``: return at once; :meth:`ready` waits for the imports (so that the
        grader's own start-up runs meanwhile)."""
        self.path = os.path.join(str(folder), "zygote.sock")
        # started from nothing of the grader's: its environment and memory are what every
        # kernel inherits (and can read in /proc/self/environ); the kernel's folders exist
        # only inside a sandbox
        env = {k: v for k, v in sandbox_env().items() if k not in ("HOME", "TMPDIR", "MPLCONFIGDIR", "IPYTHONDIR")}
        self.proc = subprocess.Popen([sys.executable, "-m", "classgrade.trusted.zygote", self.path],
                                     env=env, cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     start_new_session=True)
        self.started, self._ready = time.monotonic(), False
        if wait:
            self.ready()

    def ready(self):
        """Wait until the zygote accepts requests (raise if it could not start)."""
        if not self._ready:
            line = self.proc.stdout.readline()
            if line.strip() != b"ready":
                self.close()
                raise RuntimeError(f"classgrade: the warm-kernel process did not start (exit code "
                                   f"{self.proc.poll()}, after {time.monotonic() - self.started:.1f} s)")
            self._ready = True
        return self

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except Exception:  # noqa: BLE001
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
