"""Record and replay a notebook without nbgrader or a sandbox, for the replay's own tests.

``python tests/replay_harness.py SOURCE.ipynb RECORDS.jsonl`` runs the notebook's code cells in
order in an IPython shell with :class:`classgrade.sandboxed.record.Recorder` installed, as the
kernel that grades the instructor's source does; :func:`record` runs that in a new interpreter
(the recorder patches ``convlab.grading``), :func:`replay` runs
``python -m classgrade.sandboxed.replay`` on a submission and returns each test cell's verdict.
"""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from classgrade.trusted import replay as trusted_replay

REPO = Path(__file__).resolve().parents[1]
CONFIRMED = "confirmed"


def test_sources(nb):
    """``{grade id: source}`` of the autograded test cells of ``nb``."""
    return {c.metadata.nbgrader.grade_id: c.source for c in nb.cells
            if c.get("metadata", {}).get("nbgrader", {}).get("grade") and not c.metadata.nbgrader.get("solution")}


def environment():
    return dict(os.environ, PYTHONPATH=str(REPO), MPLBACKEND="Agg", OMP_NUM_THREADS="1")


def record(source_path, records_path):
    """Run the harness on ``source_path`` in a new interpreter; the reference cells it recorded."""
    done = subprocess.run([sys.executable, __file__, str(source_path), str(records_path)], env=environment(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    source = nbformat.read(str(source_path), as_version=4)
    return trusted_replay.reference_cells(Path(records_path).read_text().splitlines(), test_sources(source))


def replay(reference, source_path, submission, *, timeout=30, wall=300):
    """``{grade id: "confirmed" or why not}`` for the notebook ``submission`` (a path or a notebook)."""
    source = nbformat.read(str(source_path), as_version=4)
    nb = submission if isinstance(submission, nbformat.NotebookNode) else \
        nbformat.read(str(submission), as_version=4)
    cells = trusted_replay.notebook_cells(nb, source, set(test_sources(source)))
    plan = trusted_replay.plan(cells, reference, timeout=timeout)
    with tempfile.TemporaryDirectory() as folder:
        replies = trusted_replay.run([sys.executable, "-m", "classgrade.sandboxed.replay"], plan, wall=wall,
                                     cwd=folder, env=environment())
    return {gid: trusted_replay.unreplayable(ref) or trusted_replay.verdict(ref, replies) or CONFIRMED
            for gid, ref in reference.items()}


def _main(source_path, records_path):
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    from classgrade.protocol import cell_hash
    from classgrade.sandboxed.record import Recorder
    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    recorder = Recorder(os.open(records_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), shell.user_ns)
    recorder.install()
    for cell in nbformat.read(source_path, as_version=4).cells:
        if cell.cell_type == "code":
            recorder.start_cell(cell_hash(cell.source))
            shell.run_cell(cell.source, store_history=False)


if __name__ == "__main__":
    _main(*sys.argv[1:3])
