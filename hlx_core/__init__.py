"""hlx_core: the data layer, runtime and kernel library behind the ``hlx`` facade."""
