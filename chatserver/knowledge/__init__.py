"""Knowledge: files' text as passages, their vectors, and finding the
passages that answer a question. splitting.py cuts text into passages;
embedders.py turns text into vectors (an OpenAI-compatible `/v1/embeddings`,
or the built-in model of minilm.py); vectors.py decides at start-up whether
PostgreSQL keeps vectors (pgvector) and with which model; indexing.py stores a
file's passages and runs the `knowledge.embed` job and the re-index;
retrieval.py ranks passages for a question (full-text and vectors, fused).

May import `data`, `jobs` and infrastructure, never `api`.
"""
