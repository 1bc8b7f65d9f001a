"""The job queue on Redis lists (leases, retries, dead letters, periodic
tasks) and the wiring of which job runs which code (tasks.py).

queue.py imports only infrastructure (`redis_keys`); tasks.py imports the layers
whose jobs it runs (ai, files, knowledge, live, portable), never `api`.
"""
