"""Placeholder until implemented."""
def encode(*a, **k): raise NotImplementedError
def decode(*a, **k): raise NotImplementedError
def pre_serialize(*a, **k): raise NotImplementedError
