"""Shared foundations: user-facing errors, safe file I/O, cache paths, TOML configs, notices."""
