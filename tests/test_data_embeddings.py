"""book.data's Wikipedia sample and word-vector benchmarks (files from gensim's wheel)."""

from __future__ import annotations

import re

import pytest

from book import data

WORDS = re.compile(r"[^\W\d_]+( [^\W\d_]+)*")  # letters only, single spaces


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A fresh cache folder, parsed into once for the whole module."""
    folder = tmp_path_factory.mktemp("book-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BOOK_CACHE", str(folder))
        articles = data._wikipedia_articles()
    return folder, articles


def test_parse_gives_clean_lowercase_articles(cache):
    _, articles = cache
    assert 90 <= len(articles) <= 120
    words = [w for a in articles for w in a.split(" ")]
    assert 400_000 < len(words) < 550_000
    assert all(WORDS.fullmatch(a) for a in articles), "markup, digits or stray spaces left"
    assert all(a == a.lower() for a in articles)
    counts = {}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    assert max(counts, key=counts.get) == "the"
    for markup in ("ref", "nbsp", "http", "https", "cite", "infobox"):
        assert counts.get(markup, 0) < 50, f"{markup!r} left {counts.get(markup)} times"


def test_the_cache_is_written_once_and_read_back(cache, monkeypatch):
    folder, articles = cache
    files = list(folder.glob("wikipedia-v*.txt"))
    assert len(files) == 1 and not list(folder.glob("*.partial"))
    monkeypatch.setenv("BOOK_CACHE", str(folder))
    assert data._wikipedia_articles() == articles
    files[0].write_text("cached text\n", encoding="utf-8")  # the cache, not gensim, is read
    try:
        assert data._wikipedia_articles() == ["cached text"]
    finally:
        files[0].write_text("\n".join(articles) + "\n", encoding="utf-8")


def test_an_unwritable_cache_folder_still_parses(cache, tmp_path, monkeypatch):
    _, articles = cache
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("BOOK_CACHE", str(blocker / "cache"))  # mkdir fails under a file
    assert data._wikipedia_articles() == articles


def test_splits_are_deterministic_and_partition_the_articles(cache, monkeypatch):
    folder, articles = cache
    monkeypatch.setenv("BOOK_CACHE", str(folder))
    a, b, c = data._wikipedia(0), data._wikipedia(0), data._wikipedia(1)
    assert (a.train, a.val, a.test) == (b.train, b.val, b.test)
    assert a.train != c.train
    for s in (a, c):
        parts = [p.splitlines() for p in (s.train, s.val, s.test)]
        assert all(parts), "every split holds at least one article"
        assert sorted(sum(parts, [])) == sorted(articles)
        sizes = [sum(line.count(" ") + 1 for line in p) for p in parts]
        assert 0.88 < sizes[0] / sum(sizes) < 0.95


def test_load_registers_wikipedia():
    assert "wikipedia" in data.names()
    splits = data.load("wikipedia")
    assert isinstance(splits.train, str) and splits.num_classes is None
    assert "wikipedia" in repr(splits)


def test_word_benchmarks():
    b = data.word_benchmarks()
    assert len(b["analogy"]) == 19_544 and len(b["wordsim353"]) == 353
    assert len(b["simlex999"]) == 999
    sections = {q[0] for q in b["analogy"]}
    assert len(sections) == 14 and "capital-common-countries" in sections
    assert ("capital-common-countries", "athens", "greece", "baghdad", "iraq") in b["analogy"]
    assert all(len(q) == 5 and all(w == w.lower() for w in q[1:]) for q in b["analogy"])
    for name in ("wordsim353", "simlex999"):
        assert all(0 <= s <= 10 and a == a.lower() for a, _, s in b[name])
    assert ("tiger", "cat", 7.35) in b["wordsim353"]
