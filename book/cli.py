"""Command line: `python -m book assign | grade | course | toc`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parser() -> argparse.ArgumentParser:
    """The argument parser of `python -m book`."""
    p = argparse.ArgumentParser(prog="python -m book", description=__doc__)
    p.add_argument("--root", type=Path, default=ROOT, help="the book's repository (default: this one)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("assign", help="write exercises/<topic>.ipynb from every solutions/<topic>.md")
    g = sub.add_parser("grade", help="grade a folder of submitted notebooks into a CSV")
    g.add_argument("submissions", type=Path,
                   help="a folder of .ipynb files (searched recursively) or one file")
    g.add_argument("--out", type=Path, default=Path("grades.csv"))
    g.add_argument("--feedback", type=Path,
                   help="folder for a feedback file per notebook (default: OUT's name + -feedback)")
    g.add_argument("--chapter", help="the chapter (default: from the notebooks' metadata or names)")
    g.add_argument("--timeout", type=float, default=60.0,
                   help="seconds for a notebook's cells, all together (60)")
    g.add_argument("--check-timeout", type=float, default=10.0, help="seconds for each check (10)")
    g.add_argument("--memory", type=float, default=4.0, help="GiB of memory per process (4)")
    g.add_argument("--jobs", type=int, default=None, help="notebooks at once (all cores)")
    g.add_argument("--no-sandbox", action="store_true",
                   help="run notebooks without OS isolation: only for notebooks you trust")
    c = sub.add_parser("course", help="student bundle, instructor key and course _toc.yml")
    c.add_argument("--chapters", nargs="+", required=True)
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--site-solutions", action="store_true", help="course site shows the solutions")
    t = sub.add_parser("toc", help="write a copy of _toc.yml (e.g. without the solutions pages)")
    t.add_argument("--no-solutions", action="store_true", help="leave out every solutions/ page")
    t.add_argument("--chapters", nargs="+", help="keep only these chapters")
    t.add_argument("--out", type=Path, required=True)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command; return the exit status (2 with a one-line message on bad input)."""
    args = parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _assign(args: argparse.Namespace) -> int:
    from book.assign import assign

    changed = assign(args.root)
    print("\n".join(f"wrote {p}" for p in changed) or "exercises/ is up to date")
    return 0


def _grade(args: argparse.Namespace) -> int:
    from book.feedback import write_feedback
    from book.grading import GradeConfig, grade, write_csv

    if not args.out.resolve().parent.is_dir():
        raise FileNotFoundError(f"no folder {args.out.resolve().parent} for --out")
    if args.no_sandbox:
        print("warning: --no-sandbox: the notebooks run without OS isolation; grade only notebooks "
              "you trust", file=sys.stderr)
    config = GradeConfig(timeout=args.timeout, check_timeout=args.check_timeout,
                         memory=int(args.memory * 2**30), sandbox=not args.no_sandbox)
    if args.jobs:
        config.jobs = args.jobs
    source, rows = grade(args.submissions, args.root, args.chapter, config)
    write_csv(source, rows, args.out)
    feedback = args.feedback or args.out.with_name(args.out.stem + "-feedback")
    write_feedback(source, rows, feedback)
    failed = sum(bool(r.errors) for r in rows)
    print(f"graded {len(rows)} notebooks ({source.topic}) → {args.out}, feedback in {feedback}/; "
          f"{failed} with notes in 'error'")
    return 0


def _course(args: argparse.Namespace) -> int:
    from book.course import build_course

    out = build_course(args.chapters, args.out, args.root, site_solutions=args.site_solutions)
    print(f"course bundle in {out}: student/, instructor/, _toc.yml")
    return 0


def _toc(args: argparse.Namespace) -> int:
    from book.course import select_toc
    from book.site import read_toc, write_toc

    toc = select_toc(read_toc(args.root / "_toc.yml"), args.chapters, solutions=not args.no_solutions)
    write_toc(toc, args.out)
    print(f"wrote {args.out}")
    return 0


COMMANDS = {"assign": _assign, "grade": _grade, "course": _course, "toc": _toc}
