"""xception family (being written)."""
MODELS: dict = {}
