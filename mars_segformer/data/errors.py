"""The one error type raised for unusable input data."""


class MarsDataError(ValueError):
    """Input data that cannot be used, with the file, key, shape or value at fault in the message."""
