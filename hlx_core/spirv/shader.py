"""Placeholder until implemented."""
def shader_contract(*a, **k): raise NotImplementedError
