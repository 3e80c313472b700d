"""The grader's work on notebooks: make a submission gradable, read the graded one.

Runs in a grading process, as the grader. Before nbgrader grades, :func:`sanitize` makes
the submitted notebook gradable and places a check cell (:mod:`classgrade.sandboxed.fingerprints`)
after each test cell; after, :func:`apply_integrity` removes the points of tests that ran
under a monkeypatch, and :func:`scan_outputs` reports timeouts, memory errors, exits,
skipped cells and outputs cut to their bounds.
"""
import json
import uuid

import nbformat
from nbgrader.api import Gradebook

from classgrade.protocol import NOT_RUN, OUTPUT_CUT
from classgrade.sandboxed.fingerprints import CHECK_MARK, CHECK_PREFIX, check_cell_source


def grade_cells(nb):
    """grade_id -> cell for cells nbgrader tracks (grade, solution or locked)."""
    cells = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade_id") and (meta.get("grade") or meta.get("solution") or meta.get("locked")):
            cells.setdefault(meta["grade_id"], cell)
    return cells


def is_autograded_test(cell):
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.cell_type == "code" and meta.get("grade") and not meta.get("solution")


def test_cells(nb):
    """``(grade id, cell)`` of the autograded test cells of ``nb``."""
    return [(cell.metadata.nbgrader.grade_id, cell) for cell in nb.cells if is_autograded_test(cell)]


def _copy(nb):
    return nbformat.from_dict(json.loads(json.dumps(nb)))


def sanitize(path, release_nb, baseline_path, flags, told=None, left_out=None):
    """Make the submitted notebook at ``path`` gradable; append reasons to ``flags``.

    A missing, empty or unreadable notebook, or one that holds none of the release's graded
    cells (another assignment's), is replaced by the released one (it scores what a blank
    notebook scores), and ``told`` gets a sentence for the student that says why;
    ``left_out``: file name -> why the copy of the hand-in left it out (too large, a link...).
    Graded cells the release does not have run as ordinary cells. Deleted grade/test cells are put
    back where the released notebook has them; edited test cells are noted
    (nbgrader's OverwriteCells restores their source from the gradebook);
    duplicate grade ids are noted (nbgrader's DeduplicateIds keeps the last).
    A check cell (see :mod:`classgrade.sandboxed.fingerprints`) follows each test cell.
    """
    name = path.name
    nb = _read_or_release(path, release_nb, flags, told if told is not None else [], left_out or {})
    _demote_unknown(nb, release_nb, name, flags)
    _demote_copies(nb, name, flags)
    present, released = _restore_deleted(nb, release_nb, name, flags)
    _note_edited_locked(present, released, name, flags)
    _add_check_cells(nb, baseline_path)
    _unique_ids(nb)
    path.write_text(nbformat.writes(nb), encoding="utf-8")


INSTEAD = "the blank released notebook was graded in its place, so it scores what an unanswered notebook scores"


def _read_or_release(path, release_nb, flags, told, left_out):
    """The notebook at ``path``, or a copy of the release if it is missing, unreadable, or
    another assignment's; each reason said in ``flags`` and, to the student, in ``told``."""
    name = path.name
    if not path.exists():
        if name in left_out:
            flags.append(f"{name} was left out of the submission ({left_out[name]}): "
                         "graded as the blank released notebook")
            told.append(f"Your file {name} was left out of your hand-in ({left_out[name]}): {INSTEAD}.")
        else:
            flags.append(f"{name} is missing from the submission: graded as the blank released notebook")
            told.append(f"Your hand-in has no file named {name}: {INSTEAD}.")
        return _copy(release_nb)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
        if not text.strip():
            raise ValueError("the file is empty")
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is handled alike
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        flags.append(f"{name} is not a valid notebook ({reason}): graded as the blank released notebook")
        told.append(f"Your file {name} could not be read as a Jupyter notebook ({reason}): {INSTEAD}.")
        return _copy(release_nb)
    ours, theirs = set(grade_cells(release_nb)), set(grade_cells(nb))
    if ours and theirs and not ours & theirs:
        flags.append(f"{name} holds none of the assignment's graded cells (another assignment's notebook?): "
                     "graded as the blank released notebook")
        told.append(f"Your file {name} holds none of this assignment's graded cells (is it another "
                    f"assignment's notebook?): {INSTEAD}.")
        return _copy(release_nb)
    return nb


def _demote_unknown(nb, release_nb, name, flags):
    """Graded cells the assignment no longer has (a hand-in of an earlier version of it, graded
    again with ``--regrade-all``) or never had lose their grading metadata: nbgrader fails on a
    graded cell its gradebook does not know. They run as ordinary cells."""
    known = set(grade_cells(release_nb))
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        gid = meta.get("grade_id")
        if gid and gid not in known and (meta.get("grade") or meta.get("solution") or meta.get("locked")):
            flags.append(f"{name}: cell '{gid}' is not one of the assignment's graded cells: run as an ordinary cell")
            for key in ("nbgrader", "editable", "deletable"):
                cell.metadata.pop(key, None)


def _demote_copies(nb, name, flags):
    """Copies of a graded cell: the last is graded; the others lose their grading metadata
    (DeduplicateIds leaves an empty ``nbgrader`` dict that fails autograde)."""
    seen = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        gid = meta.get("grade_id")
        if gid and (meta.get("grade") or meta.get("solution") or meta.get("locked")):
            seen[gid] = seen.get(gid, 0) + 1
    for gid, count in seen.items():
        if count > 1:
            flags.append(f"{name}: cell '{gid}' appears {count} times (copied cell): "
                         "the last copy is graded, the others run as ordinary cells")
    kept = set()
    for cell in reversed(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        gid = meta.get("grade_id")
        if gid and seen.get(gid, 0) > 1 and (meta.get("grade") or meta.get("solution") or meta.get("locked")):
            if gid in kept:
                for key in ("nbgrader", "editable", "deletable"):
                    cell.metadata.pop(key, None)
            kept.add(gid)


def _restore_deleted(nb, release_nb, name, flags):
    """Put deleted graded cells back, in release order, after the cell that precedes them;
    ``(present, released)``: grade id -> cell, in ``nb`` and in the release."""
    released = grade_cells(release_nb)
    present = grade_cells(nb)
    order = [c.metadata.nbgrader.grade_id for c in release_nb.cells
             if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") in released]
    for i, gid in enumerate(order):
        if gid in present:
            continue
        cell = _copy(released[gid])
        position = 0
        for prev in reversed(order[:i]):
            if prev in present:
                position = next(k for k, c in enumerate(nb.cells) if c is present[prev]) + 1
                break
        nb.cells.insert(position, cell)
        present[gid] = cell
        kind = "test cell" if is_autograded_test(cell) else "graded cell"
        flags.append(f"{name}: {kind} '{gid}' was deleted: restored from the release")
    return present, released


def _note_edited_locked(present, released, name, flags):
    """Edited locked cells (nbgrader's OverwriteCells restores them; this only reports it)."""
    for gid, cell in present.items():
        if cell.metadata.nbgrader.get("locked") and gid in released:
            if cell.source.strip() != released[gid].source.strip() or \
                    cell.cell_type != released[gid].cell_type:
                flags.append(f"{name}: locked cell '{gid}' was edited: restored from the gradebook")


def _add_check_cells(nb, baseline_path):
    """A check cell after every autograded test cell; a student's planted copy removed."""
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith(CHECK_PREFIX):
            continue
        cells.append(cell)
        if is_autograded_test(cell):
            cells.append(nbformat.v4.new_code_cell(check_cell_source(baseline_path)))
    nb.cells = cells


def _unique_ids(nb):
    """nbformat 4.5 wants unique cell ids; copies may lack or repeat them."""
    ids = set()
    for cell in nb.cells:
        if nb.get("nbformat_minor", 0) >= 5:
            if not cell.get("id") or cell["id"] in ids:
                cell["id"] = uuid.uuid4().hex[:12]
            ids.add(cell["id"])
        else:
            cell.pop("id", None)


def _output_text(cell):
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") == "error":
            parts.append("ERROR " + out.get("ename", ""))
    return "".join(parts)


def _integrity_verdicts(nb):
    """Drop the check cells that passed; ``[(grade id, what was modified)]`` of the others'
    tests, each marked failed in ``nb``."""
    zeroed, cells, last_test = [], [], None
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith(CHECK_PREFIX):
            verdict = _output_text(cell).strip()
            if verdict == CHECK_MARK + ": ok":
                continue
            if last_test is not None:
                gid = last_test.metadata.get("nbgrader", {}).get("grade_id")
                what = verdict.split(": modified ", 1)[-1] if ": modified " in verdict else \
                    "the integrity check did not report (" + (verdict[:80] or "no output") + ")"
                zeroed.append((gid, what))
                last_test.outputs.append(nbformat.v4.new_output(
                    "error", ename="IntegrityError",
                    evalue=f"this test ran with modified checking code ({what}); no points",
                    traceback=[f"IntegrityError: this test ran with modified checking code: {what}"]))
            cells.append(cell)
            continue
        if is_autograded_test(cell):
            last_test = cell
        cells.append(cell)
    nb.cells = cells
    return zeroed


def apply_integrity(nb_path, gradebook, assignment, student, flags):
    """Zero the tests that ran under a monkeypatch; drop the check cells that passed.

    Returns the grade ids whose points were removed.
    """
    nb = nbformat.read(str(nb_path), as_version=4)
    zeroed = _integrity_verdicts(nb)
    nbformat.write(nb, str(nb_path))
    if zeroed:
        with Gradebook(gradebook) as gb:
            for gid, what in zeroed:
                grade = gb.find_grade(gid, nb_path.stem, assignment, student)
                lost = f": its {grade.auto_score:g} points removed" if grade.auto_score else ""
                flags.append(f"{nb_path.name}: test '{gid}' ran with modified checking code ({what}){lost}")
                grade.auto_score = 0.0
            gb.db.commit()
    return [gid for gid, _ in zeroed]


def _error_flag(name, label, out, timeout):
    """The flag an error output earns, or ``None``."""
    ename, evalue = out.get("ename", ""), str(out.get("evalue", ""))
    text = ename + " " + evalue + " " + " ".join(out.get("traceback", []))
    if ename in ("CellTimeoutError", "KeyboardInterrupt") or "CellTimeoutError" in text:
        return f"{name}: {label} exceeded the per-cell time limit ({timeout} s) and was interrupted"
    if ename in ("MemoryError", "OutOfMemoryError") or "can't allocate memory" in text \
            or "not enough memory" in text:
        return f"{name}: {label} exceeded the memory limit"
    if ename == "SystemExit":
        return f"{name}: {label} called sys.exit()"
    if NOT_RUN in text:
        return f"{name}: {label} was not run: {evalue.split(': ', 1)[-1]}"
    return None   # a refused write or process start is reported from the kernel log instead


def scan_outputs(nb_path, timeout, flags):
    """Report timeouts, memory errors, exits, skipped cells and cut outputs in the autograded notebook."""
    nb = nbformat.read(str(nb_path), as_version=4)
    for index, cell in enumerate(nb.cells):
        label = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"cell {index + 1}"
        for out in cell.get("outputs", []):
            flag = None
            if out.get("output_type") == "error":
                flag = _error_flag(nb_path.name, label, out, timeout)
            elif out.get("output_type") == "stream" and str(out.get("text", "")).startswith(OUTPUT_CUT):
                flag = f"{nb_path.name}: {label}: {out['text'].strip()}"
            if flag:
                flags.append(flag)
