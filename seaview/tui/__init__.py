"""The Textual app. Imported only when the TUI starts (textual is never loaded by the CLI otherwise)."""
