"""Counting accuracy on annotated crowd datasets.

:mod:`.datasets` reads the dataset layouts; :mod:`.evaluate` measures an estimator on them.
"""
