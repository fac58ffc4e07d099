"""Placeholder."""
class Store: pass
class MemoryStore(Store): pass
class DiskStore(Store): pass
