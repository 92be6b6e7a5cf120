"""resnet family (being written)."""
MODELS: dict = {}
