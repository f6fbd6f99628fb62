"""Pieces shared by the `asv` subcommands."""


class CliError(Exception):
    """A user-facing error: printed as one line `asv: error: <message>`, exit status 2."""
