"""The WSGI entry point: ``gunicorn wsgi:app`` in production, ``flask --app wsgi`` here."""

import gc

from addin import create_app

app = create_app()

# What the app built at start-up (modules, templates, compiled statements) lives as long as the
# process: moved out of the collector's reach, it is not walked again by every full collection
# (and under a forking server its pages are not copied by the walk).
gc.freeze()
