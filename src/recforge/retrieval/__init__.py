"""Serving what a run trained: a run directory -> a :class:`~recforge.retrieval.recommender.Recommender`."""
