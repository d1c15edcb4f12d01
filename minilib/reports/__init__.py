"""What the chapters read: the result files set beside the papers' printed numbers, as tables and glued values.

The rule: the chapters read from here; :mod:`minilib.reproduce` only writes results (its commands train, time
and write ``results/<experiment>/*.json``). A reader never trains and never imports torch, so a chapter that
shows results runs without it; it may read a command's plan (run names, budgets), which is plain data.

- :mod:`~minilib.reports.papers`: the papers' printed numbers, in one place, each table with its source;
- :mod:`~minilib.reports.runs`: load the result files, group a run's seeds, and the side-by-side rows of the MNIST,
  CIFAR-10 and super-resolution reproductions (chapters 5, 7, 9);
- :mod:`~minilib.reports.mvnet_claims`: MVNet's MNIST claims tested on our runs (chapter 9);
- :mod:`~minilib.reports.compare`: the three methods side by side, Pareto fronts, "when to use which" (chapter 10);
- :mod:`~minilib.reports.tables`: :class:`~minilib.reports.tables.Table`, rows shown as HTML in a notebook and as
  aligned text when printed;
- :mod:`~minilib.reports.glue`: numbers and text pasted into a chapter's prose (myst-nb glue).
"""
