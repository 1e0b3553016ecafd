"""A middleware whose factory fails, as one with a settings mistake does."""


class FailsToLoad:
    def __init__(self, get_response):
        raise RuntimeError("a middleware failed to load")
