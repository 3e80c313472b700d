"""``python -m classgrade`` (also ``classgrade``): the instructor's commands. Runs as the grader.

Example::

    python -m classgrade grade cross_correlation submitted/ --out grading/
    python -m classgrade grade cross_correlation canvas.zip --db-url postgresql://...
    python -m classgrade cross_correlation submitted/      # ``grade`` may be left out

Each other command lives in a module of its own with a ``main(argv)`` (:data:`COMMANDS`), imported
only when it runs. An :class:`~.errors.InstructorError` ends any command as one line on stderr and
exit code :data:`~.errors.EXIT_CODE`.
"""
import argparse
import importlib
import os
import sys

from .canvas import DEFAULT_REGEX
from .errors import EXIT_CODE, InstructorError
from .run import grade_class

# command -> (module of classgrade.trusted with main(argv), one line of help); "grade" is below
COMMANDS = {
    "export": ("export", "the gradebook's scores in an LMS's import format (canvas)"),
    "similarity": ("similarity", "pairs of submissions whose own code is unusually alike (HTML, JSON)"),
}

NO_SANDBOX = ("classgrade: --no-sandbox: student code ran in your own account, with your "
              "files, network and processes in reach; the report is marked unsandboxed")


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors (an unknown option, a value not a number) end the command
    as one line, as every :class:`~.errors.InstructorError` does, instead of usage and a line."""

    def error(self, message):
        raise InstructorError(f"{message}; {self.prog} --help lists the options")


def parser():
    """The command line's arguments."""
    parser = OneLineParser(
        prog="python -m classgrade grade",
        description="Autograde every submission of an nbgrader assignment in parallel, "
                    "isolating broken and hostile submissions, and write grades.csv, "
                    "feedback and a class report.")
    parser.add_argument("assignment", help="assignment name, e.g. cross_correlation")
    parser.add_argument("submissions", help="nbgrader submitted/ folder (<student>/<assignment>/*.ipynb), "
                                            "or an LMS download (.zip or folder; Canvas's names by default) for nbgrader's zip_collect")
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
    parser.add_argument("--regrade-all", action="store_true",
                        help="grade every student of the gradebook again (after the source changed): "
                             "their hand-ins from SUBMISSIONS, or else from OUT/submitted/")
    parser.add_argument("--no-feedback", action="store_true", help="skip generate_feedback")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="run student code in your own account, without the bwrap sandbox "
                             "(only for code you trust; the report says so)")
    parser.add_argument("--cold", action="store_true",
                        help="start a new interpreter for each kernel instead of forking one that "
                             "imported torch once (slower; the grades are the same)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="grade on the workers of a running Dask scheduler, e.g. tcp://head:8786; "
                             "the run stops if it does not answer within 10 s "
                             "(default: on this machine, --workers at a time)")
    return parser


def usage():
    lines = ["usage: python -m classgrade COMMAND ...", "",
             "  grade       autograde every submission of an assignment (the default command)"]
    lines += [f"  {name:<11} {help}" for name, (_, help) in COMMANDS.items()]
    return "\n".join(lines + ["", "python -m classgrade COMMAND --help: that command's options"])


def main(argv=None):
    """Run one command; its exit code. ``grade`` may be left out (``classgrade ASSIGNMENT SUBMISSIONS``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    command = argv.pop(0) if argv and (argv[0] == "grade" or argv[0] in COMMANDS) else "grade"
    try:
        if command == "grade":
            return grade(argv)
        return importlib.import_module(f"{__package__}.{COMMANDS[command][0]}").main(argv) or 0
    except InstructorError as error:
        print(f"classgrade: {error}", file=sys.stderr)
        return EXIT_CODE


def grade(argv):
    """``classgrade grade``: grade a class (:func:`.run.grade_class`)."""
    args = parser().parse_args(argv)
    if args.no_sandbox:
        print(NO_SANDBOX, file=sys.stderr)
    result = grade_class(args.course, args.assignment, args.submissions, args.out,
                         workers=args.workers, timeout=args.timeout, memory=args.memory,
                         wall=args.wall, db_url=args.db_url, regex=args.regex,
                         feedback=not args.no_feedback, progress=not args.no_progress,
                         sandbox=not args.no_sandbox, warm=not args.cold,
                         scheduler=args.scheduler, regrade_all=args.regrade_all)
    if args.no_sandbox:
        print(NO_SANDBOX, file=sys.stderr)
    print(f"graded {len(result.results)} submissions in {result.wall_seconds:.1f} s; "
          f"{len(result.needs_attention)} need attention")
    print(f"class report: {result.out / 'report.html'}  this run: {result.out / result.run / 'report.html'}  "
          f"grades: {result.out / 'grades.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
