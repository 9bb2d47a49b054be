"""Time every notebook: wall time and peak memory of a fresh kernel running it top to bottom.

`python -m book.bench [--out FILE] [NOTEBOOK ...]` (what `make bench` runs) executes each chapter
and solutions notebook in turn — one at a time, so timings do not compete — and writes a Markdown
table. Budgets: a chapter ≤ 60 s, a solutions notebook ≤ 30 s on a 2-core CPU.

`python -m book.bench --grading N` measures the grader instead: N solved optimizers notebooks
graded in sandboxes, two at a time (budget: 100 in ≤ 180 s on a 2-core CPU).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from book.site import is_notebook_source

ROOT = Path(__file__).resolve().parent.parent
BUDGET_S = {"chapters": 60, "solutions": 30}


def notebooks(root: Path = ROOT) -> list[Path]:
    """The chapter and solutions notebooks (MyST files with a kernel), in a stable order."""
    return [p for folder in ("chapters", "solutions") for p in sorted((root / folder).glob("*.md"))
            if is_notebook_source(p)]


def run_one(path: Path) -> dict:
    """Execute one notebook in a new kernel; wall seconds and the kernel's peak resident memory."""
    import jupytext
    from nbclient import NotebookClient

    notebook = jupytext.read(path)
    start = time.perf_counter()
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    # the kernel was this process's child: once reaped, its peak RSS shows here (KiB on Linux)
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"notebook": str(path.relative_to(ROOT)), "seconds": round(seconds, 1), "peak_mib": round(peak_mib)}


def grading_throughput(n: int = 100, jobs: int = 2) -> dict:
    """Grade `n` solved optimizers notebooks (sandboxed, `jobs` at once): wall and CPU seconds
    (this process and every worker and sandbox it waited for)."""
    import tempfile

    import nbformat

    from book.assign import handed_in, parse
    from book.grading import GradeConfig, grade

    source = parse(ROOT / "solutions" / "optimizers.md")
    notebook = handed_in(source)
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as folder:
        for i in range(n):
            nbformat.write(notebook, Path(folder) / f"student{i:03d}.ipynb")
        before, start = _cpu_seconds(), time.perf_counter()
        _, rows = grade(Path(folder), ROOT, "optimizers", GradeConfig(jobs=jobs))
        wall, cpu = time.perf_counter() - start, _cpu_seconds() - before
    full = sum(sum(r.scores.values()) == sum(q.points for q in source.questions) for r in rows)
    return {"submissions": n, "jobs": jobs, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "per_submission_cpu_s": round(cpu / max(n, 1), 2), "full_marks": full}


def _cpu_seconds() -> float:
    """CPU seconds of this process and of every descendant it (or they) waited for."""
    usage = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def table(rows: list[dict]) -> str:
    """The measurements as a Markdown table, with each notebook's budget."""
    lines = ["| notebook | wall time (s) | budget (s) | peak memory (MiB) | status |", "|---|---:|---:|---:|---|"]
    for r in rows:
        budget = BUDGET_S.get(r["notebook"].split("/")[0], 60)
        status = r.get("error") or ("within budget" if r["seconds"] <= budget else "OVER BUDGET")
        lines.append(f"| {r['notebook']} | {r['seconds']} | {budget} | {r.get('peak_mib', '–')} | {status} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command line: run each notebook in its own process and write the table."""
    parser = argparse.ArgumentParser(prog="python -m book.bench", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: every chapter and solutions)")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "bench.md")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # internal: measure one, print JSON
    parser.add_argument("--grading", type=int, metavar="N",
                        help="instead: grading throughput, N sandboxed optimizers submissions")
    args = parser.parse_args(argv)
    if args.grading:
        result = grading_throughput(args.grading)
        print(json.dumps(result))
        print(f"graded {result['submissions']} submissions ({result['jobs']} at once) in "
              f"{result['wall_s']} s wall, {result['cpu_s']} s CPU; "
              "budget: 100 in 180 s on 2 cores")
        return int(result["full_marks"] != result["submissions"])
    if args.one:
        print(json.dumps(run_one(args.one.resolve())))
        return 0
    rows = []
    for path in args.paths or notebooks():
        child = subprocess.run([sys.executable, "-m", "book.bench", "--one", str(path)], capture_output=True,
                               text=True, cwd=ROOT)
        if child.returncode == 0:
            rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
        else:
            error = (child.stderr.strip().splitlines() or ["failed"])[-1][:120]
            rows.append({"notebook": str(Path(path).resolve().relative_to(ROOT)), "seconds": float("nan"),
                         "error": f"FAILED: {error}"})
        print(table(rows).splitlines()[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table(rows))
    print(f"\nwrote {args.out}")
    return int(any("error" in r for r in rows))


if __name__ == "__main__":
    sys.exit(main())
