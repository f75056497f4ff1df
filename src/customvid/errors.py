"""One exception type for problems a user can fix; the CLI turns it into a one-line message and exit 2."""


class CustomvidError(Exception):
    """Bad input or a missing resource, described so that the user can act on it."""
