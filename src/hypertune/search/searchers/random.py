"""Random search: `samples` points drawn from the space up front, each with every seed."""

from hypertune.search.searchers import Searcher, register_searcher

register_searcher(Searcher(name="random", label="random", order=1))
