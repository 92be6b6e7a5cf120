"""efficientnet family (being written)."""
MODELS: dict = {}
