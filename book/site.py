"""Build the static site with Jupyter Book 1: warnings as errors, failures named by notebook and cell.

Run as `python -m book.site [--solutions 0|1] [--all] [--out DIR]` (what `make book` does).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COURSE_OUT = Path("_build") / "course"  # the course site: <out>/_build/course/_build/html


def is_notebook_source(path: Path) -> bool:
    """True for a MyST text notebook: a `.md` whose front matter has a jupytext header and a kernel."""
    if path.suffix != ".md":
        return False
    head = path.read_text(encoding="utf-8")[:600]
    return head.startswith("---") and "jupytext" in head and "kernelspec" in head


def read_toc(path: Path) -> dict:
    """A `_toc.yml` as a mapping."""
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def toc_files(node) -> list[str]:
    """Every `file:` a `_toc.yml` mapping (or a list of its entries) names, in reading order.

    The root page is not an entry (it is `root:`), so it is not listed."""
    files: list[str] = []
    if isinstance(node, dict):
        if "file" in node:
            files.append(str(node["file"]))
        for value in node.values():
            files += toc_files(value)
    elif isinstance(node, list):
        for item in node:
            files += toc_files(item)
    return files


def write_toc(toc: dict, path: Path) -> None:
    """Write a `_toc.yml` mapping."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(toc, sort_keys=False, allow_unicode=True), encoding="utf-8")


def toc_without_solutions(toc: dict) -> dict:
    """A copy of a `_toc.yml` mapping with every entry under `solutions/` removed."""

    def keep(entries: list) -> list:
        kept = []
        for entry in entries:
            if str(entry.get("file", "")).startswith("solutions/"):
                continue
            entry = dict(entry)
            for key in ("sections", "chapters"):
                if key in entry:
                    entry[key] = keep(entry[key])
                    if not entry[key]:
                        del entry[key]
            kept.append(entry)
        return kept

    out = dict(toc)
    if "parts" in out:
        out["parts"] = [dict(p, chapters=keep(p["chapters"])) for p in out["parts"]]
    if "chapters" in out:
        out["chapters"] = keep(out["chapters"])
    return out


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _cell_number(source_file: Path, cell_source: str) -> str:
    """'code cell N' (1-based, counting code cells) of the cell whose source is `cell_source`."""
    try:
        import jupytext

        cells = [c for c in jupytext.read(source_file).cells if c.cell_type == "code"]
    except Exception:  # an unreadable notebook is reported by the build itself
        return "a code cell"
    for number, cell in enumerate(cells, start=1):
        if cell.source.strip() == cell_source.strip():
            return f"code cell {number}"
    return "a code cell"


def _failure_logs(root: Path, build_dir: Path) -> list[tuple[Path, Path]]:
    """(error log, notebook source) for every notebook the last build failed to execute."""
    reports = build_dir / "html" / "reports"
    found = []
    for log in sorted(reports.rglob("*.err.log")) if reports.exists() else []:
        stem = log.relative_to(reports).as_posix().removesuffix(".err.log")
        notebook = next((root / f"{stem}{ext}" for ext in (".md", ".ipynb") if (root / f"{stem}{ext}").exists()),
                        root / stem)
        found.append((log, notebook))
    return found


def _failures(root: Path, build_dir: Path) -> list[str]:
    """One line per notebook that failed to execute, naming it, the cell and the error."""
    lines = []
    for log, notebook in _failure_logs(root, build_dir):
        text = ANSI.sub("", log.read_text(errors="replace"))
        cell = re.search(r"-{5,}\n(.*?)\n-{5,}", text, re.S)
        source = cell.group(1) if cell else ""
        errors = [t for t in text.strip().splitlines() if re.match(r"^\w+(Error|Exception|Interrupt)\b", t)]
        first = source.strip().splitlines()[0] if source.strip() else "?"
        lines.append(f"{notebook.relative_to(root)}, {_cell_number(notebook, source)} (`{first}`): "
                     f"{errors[-1] if errors else 'an error'}  [log: {log}]")
    return lines


def _reread_failed(root: Path, build_dir: Path) -> None:
    """Mark notebooks that failed last time as changed, so that Sphinx reads and runs them again."""
    for log, notebook in _failure_logs(root, build_dir):
        if notebook.exists():
            notebook.touch()
        log.unlink()


def execute(root: Path, toc: dict, build_dir: Path, jobs: int) -> None:
    """Run the toc's notebooks that the build's cache lacks, `jobs` at a time (book.execution)."""
    from book.execution import execute_into_cache, toc_notebooks, write_outcomes

    outcomes = execute_into_cache(root, toc_notebooks(root, toc), build_dir / ".jupyter_cache", jobs)
    write_outcomes(outcomes, build_dir / "execution.json")


def _fresh_course_folder(full: Path, build_dir: Path) -> None:
    """Empty a course site's pages (nothing of an earlier build may stay), keeping its executions;
    a first course build starts from the full site's executions (`full`): the same notebooks."""
    for stale in ("html", ".doctrees", "jupyter_execute"):
        shutil.rmtree(build_dir / stale, ignore_errors=True)
    cache = build_dir / ".jupyter_cache"
    if not cache.exists() and full.exists():
        shutil.copytree(full, cache)
    build_dir.mkdir(parents=True, exist_ok=True)


def build(solutions: bool = True, rebuild_all: bool = False, out: Path | None = None, root: Path = ROOT,
          jobs: int | None = None) -> int:
    """Build the site into `out`/_build/html (default `_build/html`); return the exit status.

    Notebooks are executed first, `jobs` at a time (default: BOOK_JOBS or every core), into the
    cache the build reads, so Sphinx itself executes nothing it can take from there."""
    from book.execution import default_jobs

    jobs = jobs or default_jobs()
    base = Path(out) if out is not None else root
    # jupyter-book writes to <path-output>/_build/html: the course site gets a folder of its own
    path_output = base if solutions else base / COURSE_OUT
    command = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(root), "-W", "-n", "--keep-going",
               "--path-output", str(path_output)]
    build_dir = path_output / "_build"
    if rebuild_all or not solutions:  # the course site starts from an emptied folder
        command.append("--all")
    toc = read_toc(root / "_toc.yml")
    if not solutions:
        _fresh_course_folder(base / "_build" / ".jupyter_cache", build_dir)
        stripped = build_dir / "_toc_without_solutions.yml"
        toc = toc_without_solutions(toc)
        write_toc(toc, stripped)
        command += ["--toc", str(stripped)]
    _reread_failed(root, build_dir)
    execute(root, toc, build_dir, jobs)
    run = subprocess.run(command, cwd=root, capture_output=True, text=True)
    sys.stdout.write(run.stdout)
    sys.stderr.write(run.stderr)
    if run.returncode != 0:
        failed = _failures(root, build_dir)
        print("\nThe site did not build." + "".join(f"\n  {f}" for f in failed), file=sys.stderr)
    else:
        kind = "book" if solutions else "course site (no solutions, no hidden tests)"
        print(f"\nThe {kind} is in {build_dir / 'html'}: open {build_dir / 'html' / 'index.html'}")
    return run.returncode


def main(argv: list[str] | None = None) -> int:
    """Command line: `python -m book.site --solutions 0` builds the site without solutions."""
    parser = argparse.ArgumentParser(prog="python -m book.site", description=__doc__.splitlines()[0])
    parser.add_argument("--solutions", type=int, choices=[0, 1], default=1, help="include exercise solutions")
    parser.add_argument("--all", action="store_true", help="re-read every page, not only changed ones")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: the book's): the site goes to OUT/_build/html, "
                             "the course site (--solutions 0) to OUT/_build/course/_build/html")
    parser.add_argument("--jobs", type=int, default=None, help="notebooks executed at once (all cores)")
    args = parser.parse_args(argv)
    return build(solutions=bool(args.solutions), rebuild_all=args.all, out=args.out, jobs=args.jobs)


if __name__ == "__main__":
    sys.exit(main())
