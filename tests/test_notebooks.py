"""Every chapter and solutions notebook runs top to bottom without an error.

Each notebook is executed once per test run: the run's site build executes the table of
contents' notebooks in parallel into its execution cache (book.execution) before Sphinx reads
them, and these tests read that record. A failure names the notebook, the cell and the error.
"""

from __future__ import annotations

import pytest

from book.execution import read_notebook, read_outcomes
from tests.conftest import NOTEBOOK_SOURCES, ROOT, site_build


def test_every_chapter_and_solutions_notebook_is_collected():
    names = {p.stem for p in NOTEBOOK_SOURCES if p.parent.name == "chapters"}
    assert {"optimizers", "foundations"} <= names
    assert {p.stem for p in NOTEBOOK_SOURCES if p.parent.name == "solutions"} <= names


@pytest.mark.parametrize("path", NOTEBOOK_SOURCES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebook_runs_without_error(path):
    build = site_build(True)
    record = build.build_dir / "execution.json"
    assert record.exists(), f"the site build executed nothing:\n{build.report[-4000:]}"
    name = str(path.relative_to(ROOT))
    outcome = read_outcomes(record).get(name)
    assert outcome is not None, f"{name} is not in _toc.yml, so neither the site nor the tests run it"
    assert outcome.error is None, f"{name} failed:\n{outcome.error[-6000:]}"
    if path.parent.name == "solutions":
        out = "".join(o.get("text", "") for c in executed(build, path).cells
                      for o in c.get("outputs", []))
        assert "not attempted" not in out, "a solution is missing"
        assert "✗" not in out and "hint:" not in out, f"a solution fails its own checks:\n{out}"


def executed(build, path):
    """The executed notebook of `path` from the run's site-build cache."""
    from jupyter_cache import get_cache

    cache = get_cache(str(build.build_dir / ".jupyter_cache"))
    return cache.get_cache_bundle(cache.match_cache_notebook(read_notebook(path)).pk).nb


def test_a_failing_cell_is_reported_with_its_source_and_error(tmp_path):
    from book.execution import execute_into_cache

    broken = tmp_path / "broken.md"
    header = (ROOT / "chapters" / "optimizers.md").read_text(encoding="utf-8").split("---", 2)[1]
    broken.write_text(f"---{header}---\n# Broken\n\n```{{code-cell}} ipython3\nx = 1\n```\n\n"
                      "```{code-cell} ipython3\nraise ValueError('planted ' + str(x))\n```\n",
                      encoding="utf-8")
    assert len([c for c in read_notebook(broken).cells if c.cell_type == "code"]) == 2
    [outcome] = execute_into_cache(tmp_path, [broken], tmp_path / "cache", jobs=1)
    assert "ValueError: planted 1" in outcome.error
    assert "raise ValueError" in outcome.error
    [again] = execute_into_cache(tmp_path, [broken], tmp_path / "cache", jobs=1)
    assert not again.cached, "a failed notebook must not be taken from the cache"
