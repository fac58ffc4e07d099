"""Placeholder until implemented."""
def validate(*a, **k): raise NotImplementedError
