"""The HTTP and WebSocket handlers: parse and validate, call the layers
below, shape the answer. No SQL here (data/ holds it).

May import every other folder of the package; nothing imports `api` but
`app.py`, which holds the route table. A module whose handlers are in the
route table is imported by no other module here: what handlers share lives
in modules that serve no route (access.py, authentication.py, openai_access.py,
the *_shapes modules, endpoint.py, pagination.py, ratelimit.py, rest_errors.py).
"""
