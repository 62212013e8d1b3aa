"""The WSGI entry point: ``gunicorn wsgi:app`` in production, ``flask --app wsgi`` here."""

import gc
import sys

from addin import create_app

app = create_app()

if "gunicorn" in sys.modules or "run" in sys.argv[1:]:
    # Serving (gunicorn, or `flask --app wsgi run` as `make run` serves the preview): load the
    # language models and VADER's lexicon now (0.4 s, once per worker), not on a rep's first
    # log (1.6 s in a walk of the preview). Another `flask --app wsgi` command loads them only
    # if it scores.
    from services.sentiment import warm

    warm()

# What the app built at start-up (modules, templates, compiled statements) lives as long as the
# process: moved out of the collector's reach, it is not walked again by every full collection
# (and under a forking server its pages are not copied by the walk).
gc.freeze()
