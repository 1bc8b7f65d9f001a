"""Uploaded files: receiving and storing bytes, sniffing types, extracting
text and previews (built in, or the preview service), the preview job and
housekeeping.

May import `data`, `jobs`, `knowledge` (a file's passages) and infrastructure, never `api`.
"""
