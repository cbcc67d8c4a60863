"""The command line: thin typer commands that parse, call ``ant.jobs`` and render."""
