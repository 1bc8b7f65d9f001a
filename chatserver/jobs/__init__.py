"""Background jobs, below the layers whose code they run: queue.py (with
queue_scripts.py) is the queue on Redis lists (leases, delays, dead letters);
worker.py runs its jobs (concurrency, time limits, retries, periodic tasks,
the shutdown grace); tasks.py is what a job table declares. The server's own
table, naming the code each job runs, is chatserver/job_table.py.

May import only infrastructure (the top-level modules but app.py and
job_table.py): never `ai`, `files`, `live`, `portable`, `data` or `api`.
"""
