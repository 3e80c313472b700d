"""The check before hand-in: grading.summary, and the test cells it runs (self-contained, one line each)."""

import contextlib
import io
import json
import re
import shutil
from pathlib import Path

import pytest

from convlab import grading

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = sorted(p.name for p in (ROOT / "solutions").iterdir() if (p / f"{p.name}.ipynb").is_file())


def cells(folder, assignment):
    notebook = json.loads((ROOT / folder / assignment / f"{assignment}.ipynb").read_text())
    return [(c["metadata"].get("nbgrader", {}), "".join(c["source"]), c["cell_type"]) for c in notebook["cells"]]


def is_test(meta, kind):
    return kind == "code" and meta.get("grade") and not meta.get("solution")


def setup_namespace(assignment, folder="solutions"):
    """The names a student's notebook has after running every cell but the tests (the solution's code)."""
    namespace = {"__name__": "__main__"}
    for meta, source, kind in cells(folder, assignment):
        if kind == "code" and meta and not is_test(meta, kind) and meta.get("grade_id") != "summary":
            exec(compile(source, "<cell>", "exec"), namespace)
    return namespace


def half_done(tmp_path, monkeypatch):
    """The cross-correlation release with corr2d written (the solution's) and conv2d not yet."""
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "exercises" / "cross_correlation" / "cross_correlation.ipynb", tmp_path)
    namespace = {"__name__": "__main__"}
    solution = {m.get("grade_id"): s for m, s, _ in cells("solutions", "cross_correlation")}
    for meta, source, kind in cells("exercises", "cross_correlation"):
        if kind != "code" or is_test(meta, kind) or meta.get("grade_id") == "summary":
            continue
        if meta.get("grade_id") == "corr2d":
            source = solution["corr2d"]
        exec(compile(source, "<cell>", "exec"), namespace)
    return namespace


def test_the_summary_of_a_half_done_notebook_lists_each_part_in_full_words(tmp_path, monkeypatch):
    namespace = half_done(tmp_path, monkeypatch)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        grading.summary("cross_correlation.ipynb", namespace)
    lines = out.getvalue().splitlines()
    assert lines[0] == ("cross_correlation.ipynb: 2 of 4 tests pass, 4 of 6 points, on the visible tests; "
                        "2 more points are graded by hand.")
    state = {re.search(r"(test_\w+|written_\w+)", line).group(1): line.split("  ")[1].strip()
             for line in lines[1:6]}
    assert state == {"test_corr2d_visible": "passed", "test_corr2d_hidden": "passed",
                     "test_conv2d_visible": "failed", "test_conv2d_hidden": "failed",
                     "written_when_they_differ": "graded by hand"}, lines
    conv2d = next(line for line in lines[1:6] if "test_conv2d_visible" in line)
    assert "1 point " in conv2d and conv2d.endswith(
        "conv2d raised NotImplementedError for X 3x3, K 2x2; this function is not written yet: replace "
        "`raise NotImplementedError()` under `# YOUR CODE HERE` with your code")
    assert "3 points" in next(line for line in lines[1:6] if "test_corr2d_hidden" in line)
    assert "(hidden tests check more cases when it is graded)" in next(
        line for line in lines[1:6] if "test_corr2d_hidden" in line)
    assert "your written answer, read by the instructor" in lines[5]
    assert lines[6:] == ["", "The messages in full:",
                         "test_conv2d_visible: " + grading.run_tests("cross_correlation.ipynb", namespace)[2]["message"],
                         "test_conv2d_hidden: " + grading.run_tests("cross_correlation.ipynb", namespace)[3]["message"]]


def test_the_summary_gives_messages_in_full_and_finds_a_renamed_download(tmp_path, monkeypatch):
    namespace = half_done(tmp_path, monkeypatch)
    (tmp_path / "cross_correlation.ipynb").rename(tmp_path / "cross_correlation (1).ipynb")

    def conv2d(X, K):  # a long message: what it printed, quoted after the first line
        print("flipping K of shape", tuple(K.shape), "x" * 150)
        return X

    namespace["conv2d"] = conv2d
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        grading.summary("cross_correlation.ipynb", namespace)
    text = out.getvalue()
    assert text.startswith("cross_correlation (1).ipynb: 2 of 4 tests pass")
    assert "It printed:\nflipping K of shape (2, 2) " + "x" * 150 in text  # never cut


def test_the_summary_stays_quiet_while_nbgrader_grades(tmp_path, monkeypatch):
    namespace = half_done(tmp_path, monkeypatch)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        grading.summary("cross_correlation.ipynb", namespace)
    assert out.getvalue() == "summary: skipped while the notebook is graded (every test cell runs anyway)\n"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_release_ends_with_the_summary(assignment):
    meta, source, kind = cells("exercises", assignment)[-1]
    assert meta.get("grade_id") == "summary" and meta.get("locked") and not meta.get("grade")
    assert f'grading.summary("{assignment}.ipynb")' in source


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_each_test_cell_stands_alone_and_prints_one_line_when_it_passes(assignment):
    """Run alone after the notebook's own cells (no other test cell), each test passes and prints one line;
    its first line says "hidden" exactly when hidden tests follow."""
    for meta, source, kind in cells("solutions", assignment):
        if not is_test(meta, kind):
            continue
        namespace = setup_namespace(assignment)
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            exec(compile(source, meta["grade_id"], "exec"), namespace)
        assert len(out.getvalue().splitlines()) == 1, (meta["grade_id"], out.getvalue())
        first = source.splitlines()[0].lower()
        assert ("hidden" in first) == ("### BEGIN HIDDEN TESTS" in source), (meta["grade_id"], first)


def test_the_summary_cell_in_a_jupyter_kernel(tmp_path, monkeypatch):
    """The release's own last cell, run by a kernel on a half-done notebook (corr2d written, conv2d not)."""
    import nbclient
    import nbformat

    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    notebook = nbformat.read(ROOT / "exercises" / "cross_correlation" / "cross_correlation.ipynb", as_version=4)
    solution = {m.get("grade_id"): s for m, s, _ in cells("solutions", "cross_correlation")}
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "corr2d":
            cell.source = solution["corr2d"]
    nbformat.write(notebook, tmp_path / "cross_correlation.ipynb")
    nbclient.NotebookClient(notebook, timeout=300, allow_errors=True, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(out.get("text", "") for out in notebook.cells[-1].outputs if out.output_type == "stream")
    lines = printed.splitlines()
    assert lines[0].startswith("cross_correlation.ipynb: 2 of 4 tests pass, 4 of 6 points"), printed
    assert [line.split()[0] for line in lines[1:6]] == ["passed", "passed", "failed", "failed", "graded"], printed
    assert "The messages in full:" in lines
