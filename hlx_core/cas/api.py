"""Placeholder until implemented."""
def collapse(*a, **k): raise NotImplementedError
def exists(*a, **k): raise NotImplementedError
def get_default_store(*a, **k): raise NotImplementedError
def resolve(*a, **k): raise NotImplementedError
def set_default_store(*a, **k): raise NotImplementedError
def snapshot(*a, **k): raise NotImplementedError
def transaction(*a, **k): raise NotImplementedError
