"""The one exception type that entry points turn into a one-line error and exit status 2."""


class UsageError(ValueError):
  """Bad input from the user: a flag value, a file, a directory. Its message is one line."""
