"""The `pcclip` command line: thin Typer commands over the library (Rich lives only in this package)."""
