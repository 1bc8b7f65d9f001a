"""AI backends and the generation job. registry.py lists the backends
(builtin.py, callback.py, openai.py) and picks one by the settings; base.py
is the interface each declares itself by. answer_job.py is the `ai.generate` job,
context.py what a backend is told (tokens.py counts for a token budget),
models.py the models a chat may name and what each can do, pictures.py images as a
vision model receives them, sweep.py the check that no answer hangs.

May import `data`, `live`, `jobs`, `knowledge` and infrastructure, never `api`. Backends
only emit text into the live layer, through the job's `write`. Only this
folder knows the backends' names: everything else asks the chosen backend.
"""
