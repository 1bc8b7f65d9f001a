"""Export and import of chats (docs/rest.md, Export and import): ChatGPT's
`conversations.json` layout and Markdown. `chatgpt.py` converts between that
layout and our message trees without I/O; `exporter.py` reads a chat in
batches as the pieces of its conversation; `importer.py` reads a file off
the event loop and stores it; `import_job.py` runs an import in the background;
`api/portable_routes.py` streams exports and answers the requests."""
