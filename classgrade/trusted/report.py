"""The class report: score distribution, per-test failure rates, manual attention.

Runs as the grader. :class:`ClassResult` is a set of graded submissions (student ->
:class:`~classgrade.protocol.Result`): those of one run (``scope="run"``, written into the
run's folder) or the whole class as the gradebook holds it (``scope="class"``, rebuilt by
:mod:`.history`); :func:`write_report` writes either out.

The report is a list of sections, :data:`SECTIONS`: each is a function of the
:class:`Summary` that returns a :class:`Section` (a title, Markdown lines, an HTML body) or
``None`` to leave itself out. To add one, write such a function and append it to
:data:`SECTIONS` (or insert it where it belongs); nothing else changes.
"""
import html
import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

# a Figure with its own Agg canvas: no pyplot, whose import (~1-2 s) a run would pay
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .late import describe as describe_late


@dataclass
class ClassResult:
    """A graded class: each submission's result, where it went, and what the replay cannot confirm."""
    out: Path
    db_url: str
    results: dict = field(default_factory=dict)     # student -> classgrade.protocol.Result
    wall_seconds: float = 0.0
    sandbox: str = "bwrap"                          # or "none (--no-sandbox)"
    unconfirmed: list = field(default_factory=list)  # tests the replay cannot confirm, and why
    collection: object = None                       # classgrade.trusted.collect.Collection: what was found
    scope: str = "run"                              # "run": one run's submissions; "class": the gradebook's
    run: str | None = None                          # the run's folder (under out), e.g. runs/20261207T051703Z
    runs: list = field(default_factory=list)        # scope "class": the assignment's run folders, oldest first
    whole_class: object = None                      # scope "run": the class report's ClassResult, rebuilt after it

    @property
    def needs_attention(self):
        return {s: r.flags for s, r in sorted(self.results.items()) if r.flags}

    @property
    def explained(self):
        """student -> why their hand-in was not graded as handed in (said atop their feedback)."""
        return {s: r.explained for s, r in sorted(self.results.items()) if getattr(r, "explained", None)}

    def write_json(self, path):
        """``results.json``: every submission's result record (less the cells' hashes), with its
        collection's record; ``collection.json`` beside it: the whole collection's record."""
        records = {s: {k: v for k, v in r.to_dict().items() if k != "starts"} for s, r in self.results.items()}
        if self.collection is not None:   # the files found and graded, late flag, timestamp, name
            collection = self.collection.to_dict()
            for s, record in records.items():
                record["collection"] = collection["students"].get(s)
            (Path(path).parent / "collection.json").write_text(json.dumps(collection, indent=1, ensure_ascii=False))
        Path(path).write_text(json.dumps(records, indent=1))


def failure_rates(results):
    """[(notebook, grade_id, points, failed, graded)] sorted by failure rate, worst first.

    A test "fails" for a submission when it scores less than its points;
    manually graded cells are left out (they have no automatic score).
    """
    counts = defaultdict(lambda: [0, 0, 0.0])
    for res in results.values():
        for nb_name, nb in res.notebooks.items():
            for gid, cell in nb.cells.items():
                if cell.cell_type != "code":
                    continue
                entry = counts[(nb_name, gid)]
                entry[1] += 1
                entry[2] = cell.max_score
                if (cell.auto_score or 0) < cell.max_score:
                    entry[0] += 1
    rows = [(nb, gid, pts, failed, total) for (nb, gid), (failed, total, pts) in counts.items()]
    return sorted(rows, key=lambda r: (-r[3] / max(r[4], 1), r[0], r[1]))


def totals(results):
    """student -> (automatic score, automatic points available); written answers excluded."""
    out = {}
    for student, res in results.items():
        score = maximum = 0.0
        for nb in res.notebooks.values():
            for cell in nb.cells.values():
                if cell.cell_type == "code":
                    score += cell.auto_score or 0.0
                    maximum += cell.max_score
        out[student] = (score, maximum)
    return out


def manual_pending(results):
    """(cells awaiting manual grading, their points per submission) - written answers."""
    cells = {(nb_name, gid): cell.max_score for res in results.values()
             for nb_name, nb in res.notebooks.items()
             for gid, cell in nb.cells.items() if cell.needs_manual_grade}
    count = sum(1 for res in results.values() for nb in res.notebooks.values()
                for cell in nb.cells.values() if cell.needs_manual_grade)
    return count, sum(cells.values())


def histogram(scores, maximum, path, title):
    fig = Figure(figsize=(6, 3.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    if maximum and maximum <= 40:   # one bar per point
        edges = [k - 0.5 for k in range(int(maximum) + 2)]
    else:
        edges = 20
    ax.hist(scores, bins=edges, range=(0, max(maximum, 1e-9)), color="#4c72b0", edgecolor="white")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"automatic score (of {maximum:g} automatic points)")
    ax.set_ylabel("submissions")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)


@dataclass
class Summary:
    """What the sections of a report are written from (computed once)."""
    result: ClassResult
    assignment: str
    totals: dict            # student -> (automatic score, automatic points available)
    maximum: float
    mean: float
    median: float
    rates: list             # failure_rates()
    manual: str             # one sentence on the written answers awaiting grading, or ""


@dataclass
class Section:
    """One part of the report: ``title`` (``""``: no heading), Markdown lines, an HTML body."""
    title: str
    markdown: list
    html: str


def summary_section(s):
    r, e = s.result, html.escape
    if r.scope == "class":
        graded = (f"{len(r.results)} students in the gradebook (every student of {s.assignment}, "
                  f"each with their latest grading; {len(r.runs)} run(s), the latest in `{r.runs[-1] if r.runs else '-'}/`)")
    else:
        graded = f"{len(r.results)} submissions graded in {r.wall_seconds:.0f} s"
    line = (f"{graded}; automatic score mean {s.mean:.2f}, median {s.median:.2f} of {s.maximum:g}. "
            f"Gradebook: `{r.db_url.split('@')[-1]}`.{s.manual}")
    sandbox = f"Sandbox: {r.sandbox}." + ("" if r.sandbox == "bwrap" else
                                          " **Student code ran unsandboxed, in the grader's account.**")
    html_sandbox = f"Sandbox: {e(r.sandbox)}." + ("" if r.sandbox == "bwrap" else
                                                  " <strong>Student code ran unsandboxed, in the grader's account.</strong>")
    return Section("", [line, "", sandbox, "", "![score distribution](score_distribution.png)"],
                   f"<p>{e(line).replace('`', '')}</p>\n<p>{html_sandbox}</p>\n"
                   '<img src="score_distribution.png" alt="score distribution">')


def tests_section(s):
    md = ["| notebook | test | points | failed | rate |", "|---|---|---:|---:|---:|"]
    md += [f"| {nb} | `{gid}` | {pts:g} | {f}/{n} | {100 * f / max(n, 1):.0f}% |" for nb, gid, pts, f, n in s.rates]
    e = html.escape
    rows = "".join(f"<tr><td>{e(nb)}</td><td><code>{e(gid)}</code></td><td>{pts:g}</td>"
                   f"<td>{f}/{n}</td><td>{100 * f / max(n, 1):.0f}%</td></tr>" for nb, gid, pts, f, n in s.rates)
    return Section("Tests students fail most", md,
                   "<table><tr><th>notebook</th><th>test</th><th>points</th><th>failed</th><th>rate</th></tr>"
                   f"{rows}</table>")


def _student_list(items, empty):
    """Markdown lines and an HTML list of ``student -> [lines]``."""
    e = html.escape
    md = []
    for student, lines in items.items():
        md.append(f"- **{student}**")
        md += [f"  - {line}" for line in lines]
    body = "".join(f"<li><b>{e(st)}</b><ul>" + "".join(f"<li>{e(x)}</li>" for x in lines) + "</ul></li>"
                   for st, lines in items.items())
    return (md or [empty]), f"<ul>{body or f'<li>{e(empty)}</li>'}</ul>"


def attention_section(s):
    attention = s.result.needs_attention
    md, body = _student_list(attention, "Nothing: every submission was graded normally.")
    return Section(f"Needs manual attention ({len(attention)})", md, body)


def substitutes_section(s):
    """The students whose feedback says, at its top, that their hand-in was not graded as handed in."""
    explained = s.result.explained
    if not explained:
        return None
    md, body = _student_list(explained, "")
    intro = ("Their feedback says so at its top: the hand-in could not be graded as handed in, "
             "and what was graded instead.")
    return Section(f"Feedback that explains a substitute ({len(explained)})", [intro, ""] + md,
                   f"<p>{html.escape(intro)}</p>{body}")


def lateness(results):
    """[(student, seconds late, late penalty)] of the submissions handed in after the due date."""
    return [(student, res.seconds_late, sum(getattr(nb, "late_penalty", None) or 0.0 for nb in res.notebooks.values()))
            for student, res in sorted(results.items()) if getattr(res, "seconds_late", 0) > 0]


def late_section(s):
    """The submissions handed in after the due date (the late policy's, :mod:`.late`)."""
    late = lateness(s.result.results)
    if not late:
        return None
    e = html.escape
    md = ["| student | late by | penalty (points) |", "|---|---|---:|"]
    md += [f"| {st} | {describe_late(sec)} | {p:g} |" for st, sec, p in late]
    rows = "".join(f"<tr><td>{e(st)}</td><td>{describe_late(sec)}</td><td>{p:g}</td></tr>" for st, sec, p in late)
    return Section(f"Handed in late ({len(late)})", md,
                   f"<table><tr><th>student</th><th>late by</th><th>penalty (points)</th></tr>{rows}</table>")


def collection_section(s):
    """What the collection found (:mod:`.collect`): a run's, not the class report's."""
    collection = getattr(s.result, "collection", None)
    if collection is None:
        return None
    lines = collection.report_lines()
    return Section("Collection", [f"- {line}" for line in lines],
                   "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>")


def scores_section(s):
    md = ["| student | score | of |", "|---|---:|---:|"]
    md += [f"| {st} | {sc:g} | {m:g} |" for st, (sc, m) in sorted(s.totals.items())]
    e = html.escape
    rows = "".join(f"<tr><td>{e(st)}</td><td>{sc:g}</td><td>{m:g}</td></tr>" for st, (sc, m) in sorted(s.totals.items()))
    return Section("Scores", md, f"<table><tr><th>student</th><th>score</th><th>of</th></tr>{rows}</table>")


# The report's sections, in order (see the module's docstring)
SECTIONS = [summary_section, tests_section, attention_section, substitutes_section, late_section,
            collection_section, scores_section]


def summarize(result, assignment):
    """The :class:`Summary` of ``result`` that every section reads."""
    tot = totals(result.results)
    scores = [sc for sc, _ in tot.values()]
    pending, pending_points = manual_pending(result.results)
    return Summary(result=result, assignment=assignment, totals=tot,
                   maximum=max((m for _, m in tot.values()), default=0.0),
                   mean=sum(scores) / len(scores) if scores else 0.0,
                   median=statistics.median(scores) if scores else 0.0,
                   rates=failure_rates(result.results),
                   manual=(f" {pending} answers ({pending_points:g} points per submission) await grading by hand "
                           "in formgrader; they are not in these scores." if pending else ""))


def write_report(result, assignment, out):
    """Write ``report.html``, ``report.md`` and ``score_distribution.png`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    s = summarize(result, assignment)
    what = "students" if result.scope == "class" else "submissions"
    histogram([sc for sc, _ in s.totals.values()], s.maximum, out / "score_distribution.png",
              f"{assignment}: {len(s.totals)} {what}")
    sections = [section for section in (fn(s) for fn in SECTIONS) if section is not None]
    title = f"{'Class report' if result.scope == 'class' else 'Run report'}: {assignment}"
    md = [f"# {title}", ""]
    for section in sections:
        md += ([f"## {section.title}", ""] if section.title else []) + section.markdown + [""]
    (out / "report.md").write_text("\n".join(md))
    e = html.escape
    body = "\n".join((f"<h2>{e(section.title)}</h2>\n" if section.title else "") + section.html for section in sections)
    (out / "report.html").write_text(f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{e(title)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2em .6em}}</style></head>
<body><h1>{e(title)}</h1>
{body}
</body></html>
""")
