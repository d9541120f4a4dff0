"""tools: the `simsmith` command line (Typer), one app per noun, joined in tools.cli.

Commands are a few lines each calling the same simcore services the API uses.
"""
