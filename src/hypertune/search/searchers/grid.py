"""Grid search: every combination of the searched values (times `samples`, each with every seed)."""

from hypertune.search.searchers import Searcher, register_searcher

register_searcher(Searcher(name="grid", label="grid", order=0))
