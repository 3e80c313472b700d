"""Collecting a class's hand-ins (``classgrade/trusted/collect.py``): Canvas's downloads and
nbgrader's ``submitted/`` folders.

The collection is tested directly on Canvas-style zips (with and without the UTF-8 flag) and
folder downloads built here: several files of one student, LATE_ files, UTF-8 names, a .py
hand-in, stray files, notebooks under other names or of another assignment, students of one
name; then one ``python -m classgrade grade`` run on a small class, and the commands that must
stop with one line.
"""
import datetime
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbgrader.coursedir import CourseDirectory

from classgrade.trusted import collect as collecting
from classgrade.trusted import report
from classgrade.trusted.cli import main as classgrade_main
from classgrade.trusted.errors import InstructorError

sys.path.insert(0, str(Path(__file__).parent))
from test_classgrade import EXPECTED, HOSTILE, course  # noqa: E402,F401 - course: the fixture

SOURCE = HOSTILE / "course" / "solutions"
NB = {case: (HOSTILE / "submitted" / case / "tiny" / "tiny.ipynb").read_bytes()
      for case in ("correct", "partial", "blank", "wrong")}
# the regex of classgrade before Canvas's user ids were kept (the student id is the name)
OLD_REGEX = r".*/(?P<student_id>[^/_]+)_(?:LATE_)?(?:[0-9]+_)*(?P<file_id>[^/]+?)(?:-[0-9]+)?\.ipynb$"
NOON = (2026, 12, 1, 12, 0, 0)


class UnflaggedName(zipfile.ZipInfo):
    """A zip entry whose name is written as UTF-8 bytes without the UTF-8 flag, as Canvas does
    (zipfile itself flags every non-ASCII name: ``ZipInfo._encodeFilenameFlags``)."""

    encoding = "utf-8"

    def _encodeFilenameFlags(self):
        return self.filename.encode(self.encoding), self.flag_bits & ~collecting.UTF8_FLAG


class Cp1252Name(UnflaggedName):
    """An entry whose name is in a Windows code page, unflagged: not UTF-8."""
    encoding = "cp1252"


def make_zip(path, entries, *, flag=True):
    """``entries``: [(name, bytes, date_time)]; ``flag``: mark the non-ASCII names as UTF-8."""
    with zipfile.ZipFile(path, "w") as z:
        for name, data, when in entries:
            z.writestr((zipfile.ZipInfo if flag else UnflaggedName)(name, when), data)
    return path


def make_folder(path, entries):
    """The same entries as files of a folder download, with their times as modification times."""
    path.mkdir(parents=True)
    for name, data, when in entries:
        (path / name).write_bytes(data)
        stamp = datetime.datetime(*when, tzinfo=datetime.timezone.utc).timestamp()
        os.utime(path / name, (stamp, stamp))
    return path


def at(hour, day=1):
    return (2026, 12, day, hour, 0, 0)


@pytest.fixture
def release(tmp_path):
    """The tiny assignment's notebook names, as a release folder."""
    folder = tmp_path / "release" / "tiny"
    shutil.copytree(SOURCE / "tiny", folder)
    return folder


@pytest.fixture
def course_source(tmp_path):
    """A course source with tiny and another assignment, conv_layers (its notebook: layers.ipynb)."""
    source = tmp_path / "source"
    shutil.copytree(SOURCE / "tiny", source / "tiny")
    (source / "conv_layers").mkdir()
    shutil.copy(SOURCE / "tiny" / "tiny.ipynb", source / "conv_layers" / "layers.ipynb")
    return source / "tiny"


def gather(download, release, tmp_path, **options):
    options.setdefault("source_dir", SOURCE / "tiny")
    return collecting.collect(download, "tiny", release, tmp_path / "work", **options)


def graded_bytes(col, student, notebook="tiny.ipynb"):
    return (Path(col.students[student]) / notebook).read_bytes()


def why(col, file):
    """The record of one file found, by the end of its name."""
    (found,) = [f for f in col.files if f.file.endswith(file)]
    return found


DOWNLOADS = ["zip", "zip without the UTF-8 flag", "folder"]


def download(kind, tmp_path, entries):
    if kind == "folder":
        return make_folder(tmp_path / "download", entries)
    return make_zip(tmp_path / "canvas.zip", entries, flag=kind == "zip")


@pytest.mark.parametrize("kind", DOWNLOADS)
def test_the_newest_of_a_student_s_files_is_graded_and_the_others_are_named(kind, tmp_path, release):
    entries = [
        # resubmission number first: -2 is graded although -1 carries a later time
        ("alice_101_1_tiny.ipynb", NB["wrong"], at(8)),
        ("alice_101_2_tiny-1.ipynb", NB["partial"], at(11)),
        ("alice_101_3_tiny-2.ipynb", NB["correct"], at(10)),
        # then the time: a copy handed in later is graded, an older one is not
        ("bob_102_4_tiny.ipynb", NB["wrong"], at(8)),
        ("bob_102_5_tiny (1).ipynb", NB["correct"], at(9)),
        ("carol_103_6_tiny.ipynb", NB["correct"], at(9)),
        ("carol_103_7_tiny - Copy.ipynb", NB["wrong"], at(8)),
    ]
    col = gather(download(kind, tmp_path, entries), release, tmp_path)
    assert sorted(col.students) == ["101", "102", "103"]
    assert dict(col) == col.students and col["101"] == col.students["101"]   # still student -> folder
    for student in col.students:
        assert graded_bytes(col, student) == NB["correct"], student
    assert col.records["101"].graded == {"tiny.ipynb": why(col, "alice_101_3_tiny-2.ipynb").file}
    not_graded = {f.file.split(":")[-1].split("/")[-1]: f.why for f in col.not_graded}
    assert sorted(not_graded) == ["alice_101_1_tiny.ipynb", "alice_101_2_tiny-1.ipynb", "bob_102_4_tiny.ipynb",
                                  "carol_103_7_tiny - Copy.ipynb"]
    assert all("tiny.ipynb" in w and "was graded" in w for w in not_graded.values()), not_graded
    assert "alice_101_3_tiny-2.ipynb was graded" in not_graded["alice_101_1_tiny.ipynb"]
    assert col.records["101"].notices == [
        "Your newest file tiny-2.ipynb was graded as tiny.ipynb; earlier files tiny.ipynb, tiny-1.ipynb were not."]
    assert any("tiny (1).ipynb was graded" in n for n in col.records["102"].notices)
    # only the graded file is in a student's folder, with nbgrader's timestamp
    assert sorted(p.name for p in Path(col.students["102"]).iterdir()) == ["timestamp.txt", "tiny.ipynb"]


@pytest.mark.parametrize("kind", DOWNLOADS)
def test_names_are_utf8_and_the_canvas_user_id_is_the_student_id(kind, tmp_path, release):
    entries = [("josé garcía_201_1_tiny.ipynb", NB["correct"], NOON),
               ("李雷_202_2_tiny.ipynb", NB["partial"], NOON),
               ("Zoë_O'Brien-Ñúñez_203_3_tiny.ipynb", NB["wrong"], NOON),
               ("Ame\u0301lie_206_tiny.ipynb", NB["correct"], NOON),     # macOS's é (NFD); no submission id
               # two students of one name: two ids, two students
               ("alice_204_4_tiny.ipynb", NB["correct"], NOON),
               ("alice_205_5_tiny.ipynb", NB["blank"], NOON)]
    path = download(kind, tmp_path, entries)
    if kind != "folder":   # the problem itself: without the flag, zipfile reads the names scrambled
        with zipfile.ZipFile(path) as z:
            flagged = "李雷_202_2_tiny.ipynb" in z.namelist()
        assert flagged == (kind == "zip")
    col = gather(path, release, tmp_path)
    assert {s: r.name for s, r in col.records.items()} == {
        "201": "josé garcía", "202": "李雷", "203": "Zoë_O'Brien-Ñúñez", "204": "alice", "205": "alice",
        "206": "Am\u00e9lie"}
    assert graded_bytes(col, "202") == NB["partial"] and graded_bytes(col, "205") == NB["blank"]
    assert col.warnings == ["2 students named 'alice': ids 204, 205 (each graded as their own)"]
    assert any("josé garcía_201_1_tiny.ipynb" in f for f in col.records["201"].files)


def test_a_name_that_is_not_utf8_is_kept_as_zipfile_reads_it_with_a_warning(tmp_path, release):
    archive = tmp_path / "canvas.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(Cp1252Name("ren\u00e9e_301_1_tiny.ipynb", NOON), NB["correct"])
    col = gather(archive, release, tmp_path)
    assert col.records["301"].name == b"ren\xe9e".decode("cp437")        # zipfile's own reading
    assert graded_bytes(col, "301") == NB["correct"]
    (warning,) = col.warnings
    assert "not UTF-8" in warning and b"ren\xe9e".decode("cp437") in warning


@pytest.mark.parametrize("kind", DOWNLOADS)
def test_late_files_keep_their_flag_and_nbgrader_reads_their_timestamp(kind, tmp_path, release):
    entries = [("dora_LATE_401_1_tiny.ipynb", NB["correct"], (2026, 12, 2, 23, 59, 30)),
               ("ed_402_2_tiny.ipynb", NB["correct"], (2026, 12, 1, 9, 15, 0)),
               # late, but an on-time resubmission is not what is graded here: the newest is
               ("fay_403_3_tiny.ipynb", NB["wrong"], at(9)),
               ("fay_LATE_403_4_tiny-1.ipynb", NB["correct"], at(9, day=3))]
    col = gather(download(kind, tmp_path, entries), release, tmp_path)
    assert {s: r.late for s, r in col.records.items()} == {"401": True, "402": False, "403": True}
    assert col.records["401"].timestamp == "2026-12-02 23:59:30"
    coursedir = CourseDirectory()
    for student, when in [("401", (2026, 12, 2, 23, 59, 30)), ("402", (2026, 12, 1, 9, 15, 0)),
                          ("403", (2026, 12, 3, 9, 0, 0))]:
        assert coursedir.get_existing_timestamp(str(col.students[student])) == datetime.datetime(*when)
    assert any(line.startswith("late: dora, 401") for line in col.report_lines())


def test_files_not_graded_are_each_named_with_why_and_a_renamed_notebook_is_graded(
        tmp_path, release, course_source):
    entries = [("gil_501_1_tiny.py", b"def corr2d(X, K): pass\n", NOON),        # a .py hand-in
               ("gil_501_2_notes.txt", b"see the .py", NOON),
               ("hal_502_3_my homework.ipynb", NB["correct"], NOON),            # another name
               ("ivy_503_4_layers.ipynb", NB["correct"], NOON),                 # another assignment's
               ("jo_504_5_tiny.ipynb", NB["partial"], NOON),
               ("jo_504_6_scratch.ipynb", NB["wrong"], NOON),                   # beside the right one
               ("README.txt", b"downloaded from Canvas", NOON),                 # stray files
               ("__MACOSX/._jo_504_5_tiny.ipynb", b"\0\0", NOON),
               ("grades.ipynb", NB["blank"], NOON)]
    col = gather(make_zip(tmp_path / "canvas.zip", entries, flag=False), release, tmp_path,
                 source_dir=course_source)
    assert sorted(col.students) == ["501", "502", "503", "504"]    # each graded, blank if need be
    assert why(col, "gil_501_1_tiny.py").why == "a .py file: only notebooks (.ipynb) are graded"
    assert why(col, "gil_501_2_notes.txt").why.startswith("a .txt file")
    assert why(col, "ivy_503_4_layers.ipynb").why == "a notebook of another assignment (conv_layers)"
    assert why(col, "jo_504_6_scratch.ipynb").why.startswith("a notebook named otherwise")
    for stray in ("README.txt", "grades.ipynb"):
        assert why(col, stray).student is None and "names no student" in why(col, stray).why
    assert why(col, "__MACOSX/._jo_504_5_tiny.ipynb").why == "a hidden file (or macOS's __MACOSX metadata): not a hand-in"
    assert len(col.not_graded) == 7 and not list(Path(col.students["501"]).iterdir())
    # the renamed notebook is graded as the assignment's, and both the instructor and the student hear it
    renamed = why(col, "hal_502_3_my homework.ipynb")
    assert renamed.graded_as == "tiny.ipynb" and graded_bytes(col, "502") == NB["correct"]
    assert col.flags("502") == [f"collection: {renamed.file} was handed in under another name: graded as tiny.ipynb"]
    assert col.notices("502") == ["Your notebook my homework.ipynb was graded as tiny.ipynb, the assignment's "
                                  "notebook, since no file of that name was handed in."]
    assert col.notices("501") == ["Your file tiny.py was not graded: only notebooks (.ipynb) are graded.",
                                  "Your file notes.txt was not graded: only notebooks (.ipynb) are graded."]
    assert col.notices("503") == ["Your notebook layers.ipynb was not graded: it is a notebook of another "
                                  "assignment (conv_layers)."]
    assert col.notices("504") == ["Your notebook scratch.ipynb was not graded: the assignment's notebook is "
                                  "tiny.ipynb."]
    lines = col.report_lines()
    for f in col.not_graded:
        assert any(line.startswith(f"not graded: {f.file} ") and line.endswith(f.why) for line in lines), f.file
    assert any(line.startswith(f"graded as tiny.ipynb: {renamed.file}") for line in lines)


def test_a_folder_of_zips_links_and_broken_zips_is_collected_with_warnings(tmp_path, release):
    folder = tmp_path / "download"
    folder.mkdir()
    make_zip(folder / "section1.zip", [("amy_901_1_tiny.ipynb", NB["correct"], NOON)], flag=False)
    make_zip(folder / "section2.zip", [("bo_902_2_tiny.ipynb", NB["partial"], NOON)])
    (folder / "late").mkdir()
    (folder / "late" / "cy_LATE_903_3_tiny.ipynb").write_bytes(NB["wrong"])
    (folder / "broken.zip").write_bytes(b"PK not really a zip")
    (tmp_path / "instructor-only.ipynb").write_bytes(NB["correct"])
    (folder / "dee_904_4_tiny.ipynb").symlink_to(tmp_path / "instructor-only.ipynb")
    col = gather(folder, release, tmp_path)
    assert {s: graded_bytes(col, s) for s in col.students} == {
        "901": NB["correct"], "902": NB["partial"], "903": NB["wrong"]}
    assert col.records["903"].late and why(col, "section1.zip:amy_901_1_tiny.ipynb").graded_as == "tiny.ipynb"
    assert [w.split(":")[0] for w in col.warnings] == ["broken.zip", "dee_904_4_tiny.ipynb"]
    assert "not a readable zip" in col.warnings[0] and "symbolic link" in col.warnings[1]


@pytest.mark.parametrize("case", ["empty folder", "empty zip", "zip of another assignment",
                                  "zip of notebooks named otherwise", "zip of stray files"])
def test_nothing_of_the_assignment_is_an_error_that_says_what_was_expected(case, tmp_path, release, course_source):
    if case == "empty folder":
        (tmp_path / "download").mkdir()
        path = tmp_path / "download"
    else:
        entries = {"empty zip": [],
                   "zip of another assignment": [(f"s{i}_60{i}_1_layers.ipynb", NB["correct"], NOON) for i in range(3)],
                   "zip of notebooks named otherwise": [("kim_701_1_hw1.ipynb", NB["correct"], NOON)],
                   "zip of stray files": [("tiny.ipynb", NB["correct"], NOON), ("notes.txt", b"", NOON)]}[case]
        path = make_zip(tmp_path / "canvas.zip", entries)
    with pytest.raises(InstructorError) as error:
        gather(path, release, tmp_path, source_dir=course_source)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{path.name} holds no submission of tiny: expected files named like "
                              "<name>_<userid>_<subid>_tiny.ipynb"), message
    found = {"empty folder": "found no file at all", "empty zip": "found no file at all",
             "zip of another assignment": "found 3 files of other assignments: canvas.zip:s0_600_1_layers.ipynb",
             "zip of notebooks named otherwise": "found 1 file named otherwise: canvas.zip:kim_701_1_hw1.ipynb",
             "zip of stray files": "found 2 files whose names name no student: canvas.zip:notes.txt"}[case]
    assert found in message, message


def test_nbgrader_s_submitted_folders_keep_their_layout_and_are_told_of_too(tmp_path, release):
    submitted = tmp_path / "submitted"
    for student, files in {"ann": {"tiny.ipynb": NB["correct"], "tiny (1).ipynb": NB["wrong"],
                                   "helper.py": b"x = 1\n", "timestamp.txt": b"2026-12-01 10:00:00 UTC"},
                           "ben": {"homework.ipynb": NB["partial"],
                                   ".ipynb_checkpoints/homework-checkpoint.ipynb": NB["wrong"]},
                           "cy": {}}.items():
        (submitted / student / "tiny").mkdir(parents=True)
        for name, data in files.items():
            (submitted / student / "tiny" / name).parent.mkdir(parents=True, exist_ok=True)
            (submitted / student / "tiny" / name).write_bytes(data)
    os.utime(submitted / "ann" / "tiny" / "tiny.ipynb", (0, 0))       # older: the exact name still wins
    (tmp_path / "instructor-only.txt").write_text("secret")
    (submitted / "ben" / "tiny" / "notes.txt").symlink_to(tmp_path / "instructor-only.txt")
    col = gather(submitted, release, tmp_path)
    assert sorted(col.students) == ["ann", "ben", "cy"]
    assert col.students["ann"] == submitted / "ann" / "tiny"           # graded as it is, timestamp and all
    assert col.records["ann"].timestamp == "2026-12-01 10:00:00"
    assert why(col, "ann/tiny/tiny (1).ipynb").why == \
        "an extra copy of tiny.ipynb: ann/tiny/tiny.ipynb was graded"
    assert why(col, "ann/tiny/helper.py").why.startswith("a .py file")
    assert graded_bytes(col, "ben") == NB["partial"] and col.students["ben"] != submitted / "ben" / "tiny"
    assert col.notices("ben") == ["Your notebook homework.ipynb was graded as tiny.ipynb, the assignment's "
                                  "notebook, since no file of that name was handed in."]
    assert why(col, "homework-checkpoint.ipynb").why.startswith("a hidden file")
    # the copy made to rename it follows no link: the link is left out, and said so
    assert not (col.students["ben"] / "notes.txt").exists()
    assert col.flags("ben")[-1] == "left out of the submission: notes.txt: a symbolic link, not copied"
    assert (submitted / "ben" / "tiny" / "homework.ipynb").exists() and \
        not (submitted / "ben" / "tiny" / "tiny.ipynb").exists()      # the instructor's folder untouched
    (tmp_path / "other").mkdir()
    shutil.copytree(submitted / "cy", tmp_path / "other" / "cy")
    with pytest.raises(InstructorError, match="other holds no submission of tiny"):
        gather(tmp_path / "other", release, tmp_path / "again")


def test_an_assignment_of_two_notebooks(tmp_path):
    release = tmp_path / "release" / "tiny"
    release.mkdir(parents=True)
    for name in ("part_a.ipynb", "part_b.ipynb"):
        shutil.copy(SOURCE / "tiny" / "tiny.ipynb", release / name)
    entries = [("ann_1_1_part_a.ipynb", NB["correct"], at(8)), ("ann_1_2_part_b.ipynb", NB["partial"], at(9)),
               ("ben_2_3_part_a.ipynb", NB["correct"], at(8)), ("ben_2_4_Part B final.ipynb", NB["wrong"], at(10)),
               ("cy_3_5_mine.ipynb", NB["correct"], at(8))]
    col = gather(make_zip(tmp_path / "canvas.zip", entries), release, tmp_path)
    assert graded_bytes(col, "1", "part_b.ipynb") == NB["partial"]
    assert graded_bytes(col, "2", "part_b.ipynb") == NB["wrong"]           # the one notebook missing
    assert col.records["1"].timestamp == "2026-12-01 09:00:00"              # the newest graded file's
    assert col.records["2"].timestamp == "2026-12-01 10:00:00"
    assert why(col, "cy_3_5_mine.ipynb").why == \
        "a notebook named otherwise: which of part_a.ipynb, part_b.ipynb it is cannot be told"
    assert not list(Path(col.students["3"]).iterdir())                    # graded blank, and told why
    assert col.notices("3") == ["Your notebook mine.ipynb was not graded: the assignment's notebooks are "
                                "part_a.ipynb, part_b.ipynb."]


def test_the_old_regex_still_works_and_duplicates_do_not_stop_the_class(tmp_path, release):
    entries = [("alice_1234_5678_tiny.ipynb", NB["wrong"], at(8)),
               ("alice_1234_5679_tiny-1.ipynb", NB["correct"], at(9)),
               ("bob_LATE_2345_6789_tiny.ipynb", NB["partial"], at(9))]
    col = gather(make_zip(tmp_path / "canvas.zip", entries), release, tmp_path, regex=OLD_REGEX)
    assert sorted(col.students) == ["alice", "bob"]       # that regex's student id: the name
    assert graded_bytes(col, "alice") == NB["correct"] and graded_bytes(col, "bob") == NB["partial"]
    assert [f.file for f in col.not_graded] == ["canvas.zip:alice_1234_5678_tiny.ipynb"]


def test_plain_nbgrader_zip_collect_runs_the_canvas_plugins(tmp_path, release):
    """The plugins are nbgrader's kinds: ``nbgrader zip_collect`` itself uses them."""
    root = tmp_path / "course"
    archive = root / "downloaded" / "tiny" / "archive"
    archive.mkdir(parents=True)
    make_zip(archive / "canvas.zip", [("josé garcía_LATE_801_1_tiny.ipynb", NB["correct"], NOON),
                                      ("li_802_2_tiny.ipynb", NB["partial"], at(9))], flag=False)
    shutil.copytree(release, root / "release" / "tiny")
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", "zip_collect", "tiny",
         "--extractor=classgrade.trusted.collect.CanvasExtractorPlugin",
         "--collector=classgrade.trusted.collect.CanvasCollectorPlugin"],
        cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = {p.parent.parent.name: p.read_bytes() for p in (root / "submitted").glob("*/tiny/tiny.ipynb")}
    assert got == {"801": NB["correct"], "802": NB["partial"]}
    assert (root / "submitted" / "801" / "tiny" / "timestamp.txt").read_text() == "2026-12-01 12:00:00"


def test_the_report_and_results_json_hold_the_collection(tmp_path, release):
    entries = [("alice_101_1_tiny.ipynb", NB["wrong"], at(8)), ("alice_101_2_tiny-1.ipynb", NB["correct"], at(9)),
               ("bob_102_3_tiny.py", b"", NOON), ("README.txt", b"", NOON)]
    col = gather(make_zip(tmp_path / "canvas.zip", entries), release, tmp_path)
    result = report.ClassResult(out=tmp_path, db_url="sqlite:///x.db", collection=col)
    report.write_report(result, "tiny", tmp_path)
    md, page = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    assert "## Collection" in md and "<h2>Collection</h2>" in page
    for f in col.not_graded:
        assert f"not graded: {f.file} " in md and f.why in md
        assert f.file in page
    assert "canvas.zip: 4 files from 2 students; 1 graded, 3 not graded; 0 late." in md
    result.write_json(tmp_path / "results.json")
    whole = json.loads((tmp_path / "collection.json").read_text())
    assert {f["file"]: f["why"] for f in whole["files"] if not f["graded_as"]} == {
        f.file: f.why for f in col.not_graded}
    assert whole["students"]["102"]["not_graded"] == {"canvas.zip:bob_102_3_tiny.py": why(col, "tiny.py").why}


# ---- one run of the command line on a small class ------------------------------------------------

def test_a_canvas_download_is_graded_whole_and_its_report_names_every_file_not_graded(course, tmp_path):
    renamed = nbformat.reads(NB["correct"].decode(), as_version=4)
    entries = [("alice_1_11_tiny.ipynb", NB["wrong"], at(8)),               # an original ...
               ("alice_1_12_tiny-1.ipynb", NB["correct"], at(9)),           # ... and its resubmission
               ("josé garcía_LATE_2_21_tiny.ipynb", NB["partial"], at(23)),
               ("李雷_3_31_homework.ipynb", nbformat.writes(renamed).encode(), NOON),
               ("bob_4_41_tiny.py", b"def corr2d(X, K):\n    return X\n", NOON),
               ("bob_5_51_tiny.ipynb", NB["blank"], NOON),                  # another bob
               ("README.txt", b"downloaded from Canvas", NOON)]
    archive = make_zip(tmp_path / "canvas.zip", entries, flag=False)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "classgrade", "grade", "tiny", str(archive), "--course",
                           str(course), "--out", str(out), "--workers", "2", "--timeout", "20", "--memory", "2G",
                           "--no-feedback", "--no-progress"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = (out / "runs").iterdir()     # the run's own report and records (the class report: the gradebook's)
    results = json.loads((run / "results.json").read_text())
    assert {s: r["collection"] for s, r in json.loads((out / "results.json").read_text()).items()} == {
        s: r["collection"] for s, r in results.items()}
    scores = {s: sum(c["auto_score"] for nb in r["notebooks"].values() for c in nb["cells"].values()
                     if c["cell_type"] == "code") for s, r in results.items()}
    assert scores == {"1": EXPECTED["correct"]["score"], "2": EXPECTED["partial"]["score"],
                      "3": EXPECTED["correct"]["score"], "4": 0, "5": EXPECTED["blank"]["score"]}
    assert {s: r["collection"]["name"] for s, r in results.items()} == {
        "1": "alice", "2": "josé garcía", "3": "李雷", "4": "bob", "5": "bob"}
    assert results["2"]["collection"]["late"] and results["2"]["collection"]["timestamp"] == "2026-12-01 23:00:00"
    assert results["1"]["collection"]["not_graded"] == {
        "canvas.zip:alice_1_11_tiny.ipynb": "an earlier hand-in of tiny.ipynb: canvas.zip:alice_1_12_tiny-1.ipynb was graded"}
    assert len(json.loads((run / "collection.json").read_text())["files"]) == len(entries)
    assert any("handed in under another name" in flag for flag in results["3"]["flags"])
    md = (run / "report.md").read_text()
    section = md.split("## Collection", 1)[1]
    for file, reason in [("alice_1_11_tiny.ipynb", "an earlier hand-in of tiny.ipynb"),
                         ("bob_4_41_tiny.py", "only notebooks (.ipynb) are graded"),
                         ("README.txt", "a stray file")]:
        assert any(f"not graded: canvas.zip:{file}" in line and reason in line for line in section.splitlines()), file
    assert "graded as tiny.ipynb: canvas.zip:李雷_3_31_homework.ipynb" in section
    assert "李雷" in (run / "report.html").read_text()


@pytest.mark.parametrize("case", ["empty zip", "zip of another assignment"])
def test_a_download_with_nothing_to_grade_exits_2_with_one_line(case, course, tmp_path, capsys):
    entries = [] if case == "empty zip" else [("amy_1_1_conv2d.ipynb", NB["correct"], NOON)]
    archive = make_zip(tmp_path / "canvas.zip", entries)
    code = classgrade_main(["tiny", str(archive), "--course", str(course), "--out", str(tmp_path / "out"),
                            "--no-progress", "--cold"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("classgrade: canvas.zip holds no submission of tiny: expected "), err
    assert not (tmp_path / "out" / "gradebook.db").exists()     # stopped before the gradebook was made
