"""Re-run the papers' experiments with the project's own code: ``python -m minilib.reproduce <experiment> ...``.

One module per experiment (``mnist``: Versatile Tables 2-3, MVNet Table 1 and Fig. 2; ``compare``: the
three methods side by side at matched budgets). Each writes one JSON file per run and seed under
``results/<experiment>/`` (:func:`minilib.results.write_result`, with the command, seed, date and git
revision) and skips runs whose file counts as done (:func:`minilib.results.check_result`), so a sweep of hours
can be done in pieces. The notebooks read these files with :mod:`minilib.reports`; they never retrain.

This package holds only the commands (the modules of ``__main__.EXPERIMENTS``) and their helpers: ``common``
(what every command shares) and ``budgets`` (the comparison's plan). They train with :mod:`minilib.training`
(the one torch loop) and time with :mod:`minilib.timing`; torch itself is imported only in :mod:`minilib.torch`
and :mod:`minilib.training`.
"""
