"""Renderers that turn analysis results into text, markdown, JSON and HTML."""
