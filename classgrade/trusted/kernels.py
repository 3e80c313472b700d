"""The grader's kernel manager and client (jupyter_client's, with shorter waits).

Runs in a grading process, as the grader. nbgrader's ``Execute`` preprocessor builds
:class:`KernelManager` (``Execute.kernel_manager_class``), which starts the kernelspec that
:func:`classgrade.trusted.worker.prepare` wrote (the sandbox's launcher) with its stdout and
stderr in a file of the submission's, and builds :class:`KernelClient`.
"""
import os
import time
from queue import Empty

import zmq
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from traitlets import DottedObjectName, Type, Unicode

from classgrade.protocol import MESSAGE_BYTES, MESSAGES_QUEUED

from . import jail


# The kernel handshake and shutdown of jupyter_client wait on fixed timers: its
# wait_for_ready left ~0.23 s between the kernel being up and the first cell (measured with
# timestamps in both processes; this one, ~5 ms), and a killed kernel is polled every 0.1 s.
class KernelClient(AsyncKernelClient):
    """jupyter_client's client, ready as soon as IOPub has delivered the kernel_info request's
    own ``idle`` status (so IOPub is connected and that request's messages are drained; a
    later message of an earlier request is one nbclient ignores, by its parent id)."""

    def _context_default(self):
        context = super()._context_default()
        # the kernel binds its sockets some ms after this client connects to them, and libzmq
        # tries a refused connection again only after 100 ms: try every 5 ms
        context.setsockopt(zmq.RECONNECT_IVL, 5)
        # what the kernel's messages can make this process hold, at most MESSAGE_BYTES each and
        # MESSAGES_QUEUED of them waiting per channel (classgrade.trusted.bounded)
        context.setsockopt(zmq.MAXMSGSIZE, MESSAGE_BYTES)
        context.setsockopt(zmq.RCVHWM, MESSAGES_QUEUED)
        return context

    async def wait_for_ready(self, timeout=None):
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            msg_id = self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply":
                iopub_deadline = time.monotonic() + 0.2   # as jupyter_client: else start over
                while True:
                    try:
                        msg = await self.iopub_channel.get_msg(timeout=max(0.0, iopub_deadline - time.monotonic()))
                    except Empty:
                        break
                    if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status" \
                            and msg["content"].get("execution_state") == "idle":
                        self._handle_kernel_info_reply(reply)
                        return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")


class KernelManager(AsyncKernelManager):
    """jupyter_client's manager with :class:`KernelClient`, and a killed kernel's exit
    noticed within 5 ms instead of 100 ms."""

    # client() builds client_factory; client_class only names it (a changed client_class
    # sets client_factory, its default does not)
    client_class = DottedObjectName(f"{__name__}.KernelClient")
    client_factory = Type(KernelClient, klass=AsyncKernelClient)

    # the kernel's (and its launcher's, bwrap's) stdout and stderr: a file of the submission's,
    # never the grader's terminal (read back bounded: classgrade.trusted.worker)
    output_file = Unicode("", config=True, help="file that receives the kernel's stdout and stderr")

    async def _async_wait(self, pollinterval=0.1):
        await super()._async_wait(pollinterval=0.005)

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        if not self.output_file:
            return await super()._async_launch_kernel(kernel_cmd, **kw)
        with open(self.output_file, "ab") as output:   # the kernel's process keeps its own copy
            if tuple(kernel_cmd[1:1 + len(jail.LAUNCHER)]) == jail.LAUNCHER:
                return self._fork_launcher(kernel_cmd[1 + len(jail.LAUNCHER):], output, kw.get("cwd"))
            kw.update(stdout=output, stderr=output)
            return await super()._async_launch_kernel(kernel_cmd, **kw)

    def _fork_launcher(self, argv, output, cwd):
        """What jupyter_client's local provisioner does to launch, with the sandbox's launcher
        forked from this process (:class:`~classgrade.trusted.jail.ForkedLauncher`)."""
        provisioner = self.provisioner
        provisioner.process = jail.ForkedLauncher(argv, output, cwd or os.getcwd())
        provisioner.pid = provisioner.pgid = provisioner.process.pid   # its own session
        provisioner.cwd = cwd
        self._reconcile_connection_info(provisioner.connection_info)
