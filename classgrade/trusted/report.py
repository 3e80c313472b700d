"""The class report: score distribution, per-test failure rates, manual attention.

Runs as the grader. :class:`ClassResult` is what a run gave (student ->
:class:`~classgrade.protocol.Result`); :func:`write_report` writes it out.
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

    @property
    def needs_attention(self):
        return {s: r.flags for s, r in sorted(self.results.items()) if r.flags}

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


def lateness(results):
    """[(student, seconds late, late penalty)] of the submissions handed in after the due date."""
    return [(student, res.seconds_late, sum(nb.late_penalty or 0.0 for nb in res.notebooks.values()))
            for student, res in sorted(results.items()) if res.seconds_late > 0]


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


def write_report(result, assignment, out):
    """Write ``report.html``, ``report.md`` and ``score_distribution.png`` into ``out``."""
    out = Path(out)
    tot = totals(result.results)
    scores = [s for s, _ in tot.values()]
    maximum = max((m for _, m in tot.values()), default=0.0)
    histogram(scores, maximum, out / "score_distribution.png",
              f"{assignment}: {len(scores)} submissions")
    pending, pending_points = manual_pending(result.results)
    summary = dict(
        rates=failure_rates(result.results), attention=result.needs_attention, tot=tot, maximum=maximum,
        late=lateness(result.results), mean=sum(scores) / len(scores) if scores else 0.0,
        median=statistics.median(scores) if scores else 0.0,
        manual=(f" {pending} answers ({pending_points:g} points per submission) await grading by hand "
                "in formgrader; they are not in these scores." if pending else ""))
    (out / "report.md").write_text(_markdown(result, assignment, **summary))
    (out / "report.html").write_text(_html(result, assignment, **summary))


def _markdown(result, assignment, *, rates, attention, tot, maximum, mean, median, manual, late):
    md = [f"# Class report: {assignment}", "",
          f"{len(result.results)} submissions graded in {result.wall_seconds:.0f} s; "
          f"automatic score mean {mean:.2f}, median {median:.2f} of {maximum:g}. "
          f"Gradebook: `{result.db_url.split('@')[-1]}`.{manual}", "",
          f"Sandbox: {result.sandbox}." + ("" if result.sandbox == "bwrap" else
                                            " **Student code ran unsandboxed, in the grader's account.**"), "",
          "![score distribution](score_distribution.png)", "",
          "## Tests students fail most", "",
          "| notebook | test | points | failed | rate |", "|---|---|---:|---:|---:|"]
    md += [f"| {nb} | `{gid}` | {pts:g} | {f}/{n} | {100 * f / max(n, 1):.0f}% |"
           for nb, gid, pts, f, n in rates]
    md += ["", f"## Needs manual attention ({len(attention)})", ""]
    for student, flags in attention.items():
        md.append(f"- **{student}**")
        md += [f"  - {flag}" for flag in flags]
    if not attention:
        md.append("Nothing: every submission was graded normally.")
    if late:
        md += ["", f"## Handed in late ({len(late)})", "", "| student | late by | penalty (points) |",
               "|---|---|---:|"]
        md += [f"| {s} | {describe_late(sec)} | {p:g} |" for s, sec, p in late]
    if result.collection is not None:
        md += ["", "## Collection", ""] + [f"- {line}" for line in result.collection.report_lines()]
    return "\n".join(md) + "\n"



def _html(result, assignment, *, rates, attention, tot, maximum, mean, median, manual, late):
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(nb)}</td><td><code>{e(gid)}</code></td><td>{pts:g}</td>"
        f"<td>{f}/{n}</td><td>{100 * f / max(n, 1):.0f}%</td></tr>" for nb, gid, pts, f, n in rates)
    items = "".join(
        f"<li><b>{e(s)}</b><ul>" + "".join(f"<li>{e(x)}</li>" for x in flags) + "</ul></li>"
        for s, flags in attention.items()) or "<li>Nothing: every submission was graded normally.</li>"
    late_rows = "".join(f"<tr><td>{e(s)}</td><td>{describe_late(sec)}</td><td>{p:g}</td></tr>" for s, sec, p in late)
    late_table = (f"<h2>Handed in late ({len(late)})</h2><table><tr><th>student</th><th>late by</th>"
                  f"<th>penalty (points)</th></tr>{late_rows}</table>" if late else "")
    scores_rows = "".join(f"<tr><td>{e(s)}</td><td>{sc:g}</td><td>{m:g}</td></tr>"
                          for s, (sc, m) in sorted(tot.items()))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Class report: {e(assignment)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2em .6em}}</style></head>
<body><h1>Class report: {e(assignment)}</h1>
<p>{len(result.results)} submissions graded in {result.wall_seconds:.0f} s;
automatic score mean {mean:.2f}, median {median:.2f} of {maximum:g}.{e(manual)}</p>
<p>Sandbox: {e(result.sandbox)}.{"" if result.sandbox == "bwrap" else
 " <strong>Student code ran unsandboxed, in the grader's account.</strong>"}</p>
<img src="score_distribution.png" alt="score distribution">
<h2>Tests students fail most</h2>
<table><tr><th>notebook</th><th>test</th><th>points</th><th>failed</th><th>rate</th></tr>{rows}</table>
<h2>Needs manual attention ({len(attention)})</h2><ul>{items}</ul>{late_table}
{"" if result.collection is None else "<h2>Collection</h2><ul>" + "".join(
    f"<li>{e(line)}</li>" for line in result.collection.report_lines()) + "</ul>"}
<h2>Scores</h2><table><tr><th>student</th><th>score</th><th>of</th></tr>{scores_rows}</table>
</body></html>
"""
