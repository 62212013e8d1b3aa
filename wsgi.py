"""The WSGI entry point: ``gunicorn wsgi:app`` in production, ``flask --app wsgi`` here."""

from addin import create_app

app = create_app()
