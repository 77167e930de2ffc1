"""A tiny WSGI app for the gunicorn recipe (README "Pointing it at your own server"):
every answer names the worker that served it (X-Worker-Pid). Run it with
`gunicorn --pid PIDFILE -w 2 -b 127.0.0.1:PORT app:app` from this folder."""

import json
import os


def app(environ, start_response):
    body = json.dumps({"path": environ.get("PATH_INFO", "/"), "pid": os.getpid()}).encode()
    start_response(
        "200 OK",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("X-Worker-Pid", str(os.getpid())),
        ],
    )
    return [body]
