"""``python -m classgrade`` (also ``classgrade``): grade a whole class. Runs as the grader.

Example::

    python -m classgrade cross_correlation submitted/ --out grading/
    python -m classgrade cross_correlation canvas.zip --regex '...' --db-url postgresql://...
"""
import argparse
import os
import sys

from .collect import DEFAULT_REGEX
from .errors import Unavailable
from .run import grade_class

NO_SANDBOX = ("classgrade: --no-sandbox: student code ran in your own account, with your "
              "files, network and processes in reach; the report is marked unsandboxed")


def parser():
    """The command line's arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m classgrade",
        description="Autograde every submission of an nbgrader assignment in parallel, "
                    "isolating broken and hostile submissions, and write grades.csv, "
                    "feedback and a class report.")
    parser.add_argument("assignment", help="assignment name, e.g. cross_correlation")
    parser.add_argument("submissions", help="nbgrader submitted/ folder (<student>/<assignment>/*.ipynb), "
                                            "or an LMS download (.zip or folder) for nbgrader zip_collect")
    parser.add_argument("--course", default=".", help="course root with nbgrader_config.py (default: .)")
    parser.add_argument("--out", default="grading", help="output folder (default: grading/)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(),
                        help="parallel submissions (default: the core count, %(default)s)")
    parser.add_argument("--timeout", type=int, default=30, help="per-cell time limit in s (default 30)")
    parser.add_argument("--memory", default="4G", help="per-submission memory limit (default 4G; 0: none)")
    parser.add_argument("--wall", type=float, default=600,
                        help="wall-clock limit per grading attempt of a submission, s (default 600)")
    parser.add_argument("--db-url", default=None,
                        help="gradebook URL (nbgrader db_url), e.g. postgresql://user@host/db; "
                             "default: sqlite in the output folder")
    parser.add_argument("--regex", default=None,
                        help="FileNameCollectorPlugin.named_regexp for LMS downloads; default: "
                             + DEFAULT_REGEX.replace("%", "%%"))
    parser.add_argument("--no-feedback", action="store_true", help="skip generate_feedback")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="run student code in your own account, without the bwrap sandbox "
                             "(only for code you trust; the report says so)")
    parser.add_argument("--cold", action="store_true",
                        help="start a new interpreter for each kernel instead of forking one that "
                             "imported torch once (slower; the grades are the same)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="grade on the workers of a running Dask scheduler, e.g. tcp://head:8786 "
                             "(default: on this machine, --workers at a time)")
    return parser


def main(argv=None):
    args = parser().parse_args(argv)
    if args.no_sandbox:
        print(NO_SANDBOX, file=sys.stderr)
    try:
        result = grade_class(args.course, args.assignment, args.submissions, args.out,
                             workers=args.workers, timeout=args.timeout, memory=args.memory,
                             wall=args.wall, db_url=args.db_url, regex=args.regex,
                             feedback=not args.no_feedback, progress=not args.no_progress,
                             sandbox=not args.no_sandbox, warm=not args.cold,
                             scheduler=args.scheduler)
    except Unavailable as error:   # the sandbox, or the cluster's workers
        print(error, file=sys.stderr)
        return 2
    if args.no_sandbox:
        print(NO_SANDBOX, file=sys.stderr)
    print(f"graded {len(result.results)} submissions in {result.wall_seconds:.1f} s; "
          f"{len(result.needs_attention)} need attention")
    print(f"report: {result.out / 'report.html'}  grades: {result.out / 'grades.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
