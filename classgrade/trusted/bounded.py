"""What the grader holds of a kernel's output: at most so much per cell and per notebook.

Runs in a grading process, as the grader. nbclient, under nbgrader's ``Execute``, appends
every output message of the kernel to the notebook in memory, so a submission that prints
1 GiB made the grading process grow past 2 GB. :class:`BoundedExecute` takes ``Execute``'s
place in nbgrader's autograde preprocessors and keeps at most
:data:`~classgrade.protocol.CELL_OUTPUT_BYTES` of a cell's outputs and
:data:`~classgrade.protocol.NOTEBOOK_OUTPUT_BYTES` of a notebook's; the rest is replaced by
one line that starts with :data:`~classgrade.protocol.OUTPUT_CUT` and says how much was left
out (the report names the cell: :func:`classgrade.trusted.notebooks.scan_outputs`). A single
message is bounded too: the grader's IOPub socket refuses messages past
:data:`~classgrade.protocol.MESSAGE_BYTES`, and more than :data:`~classgrade.protocol.MESSAGES_QUEUED`
waiting to be read (:class:`classgrade.trusted.kernels.KernelClient`); the kernel's connection
drops such a message, and what follows for a moment: neither is counted in the line.
"""
import json

import nbformat
from nbgrader.converters.autograde import Autograde
from nbgrader.preprocessors import Execute

from classgrade.protocol import CELL_OUTPUT_BYTES, NOTEBOOK_OUTPUT_BYTES, OUTPUT_CUT


def message_bytes(msg):
    """About how many bytes an output message adds to the notebook."""
    content = msg.get("content", {})
    if msg.get("msg_type") == "stream":
        return len(content.get("text", ""))
    return len(json.dumps(content.get("data", content), default=str))


class BoundedExecute(Execute):
    """nbgrader's ``Execute``, keeping at most so much of the outputs (see the module)."""

    cell_bytes = CELL_OUTPUT_BYTES
    notebook_bytes = NOTEBOOK_OUTPUT_BYTES

    def preprocess(self, nb, resources=None, km=None):
        self._kept, self._notebook_kept, self._notes = {}, 0, {}
        return super().preprocess(nb, resources=resources, km=km)

    def output(self, outs, msg, display_id, cell_index):
        size = message_bytes(msg)
        room = min(self.cell_bytes - self._kept.get(cell_index, 0), self.notebook_bytes - self._notebook_kept)
        if size <= room:
            self._keep(cell_index, size)
            return super().output(outs, msg, display_id, cell_index)
        out = None
        if msg.get("msg_type") == "stream" and room > 0:   # a stream's first part, up to the bound
            text = msg["content"].get("text", "")
            msg = dict(msg, content=dict(msg["content"], text=text[:room]))
            self._keep(cell_index, room)
            out = super().output(outs, msg, display_id, cell_index)
            size -= room
        self._left_out(outs, cell_index, size)
        return out

    def _keep(self, cell_index, size):
        self._kept[cell_index] = self._kept.get(cell_index, 0) + size
        self._notebook_kept += size

    def _left_out(self, outs, cell_index, size):
        """Count ``size`` bytes left out of cell ``cell_index``, in its one note line."""
        note = self._notes.get(cell_index)
        if note is None or not any(out is note[0] for out in outs):   # cleared with clear_output
            note = [nbformat.v4.new_output("stream", name="stderr", text=""), 0]
            self._notes[cell_index] = note
            outs.append(note[0])
        note[1] += size
        note[0]["text"] = (f"{OUTPUT_CUT} {note[1]} bytes of this cell's output (the grader keeps "
                           f"{self.cell_bytes // 2**20} MiB per cell, {self.notebook_bytes // 2**20} MiB "
                           "per notebook)\n")


def autograde_preprocessors():
    """nbgrader's autograde preprocessors, with :class:`BoundedExecute` in ``Execute``'s place."""
    default = Autograde.class_traits()["autograde_preprocessors"].default()
    return [BoundedExecute if pp is Execute else pp for pp in default]
