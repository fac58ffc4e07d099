"""The device kit: what every GPU backend (built-in or third-party) shares.

``layout`` (which buffers a plan needs, what each stage writes, alignment), ``limits`` (device limits in
one form and the one plan-vs-limits check), ``selection`` (choosing a device by index, name, UUID or
environment variable), ``lru`` (the bounded cache), ``residency`` (input buffers kept by handle) and
``poison`` (clearing outputs before a run, or poisoning them to expose unwritten elements). Backend
authors import it through ``hlx.plugin``.
"""
