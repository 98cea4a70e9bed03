"""The errors a user can cause by what they configure: every command prints them as one line."""


class ConfigError(ValueError):
    """Configuration that is rejected: an unknown key, a wrong type, a value out of range, a bad URL."""
