"""Previews of uploaded files: extracted text, a short text preview and,
for images, a thumbnail; made by the preview service or the built-in extractor."""
