"""The HTTP and WebSocket handlers: parse and validate, call the layers
below, shape the answer. No SQL here (data/ holds it).

May import every other folder of the package; nothing imports `api` but
`app.py`, which holds the route table.
"""
