"""Export and import of chats (docs/rest.md, Export and import): ChatGPT's
`conversations.json` layout and Markdown. `chatgpt.py` converts between that
layout and our message trees without I/O; `api/portable.py` streams and stores."""
