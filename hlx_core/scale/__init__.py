"""Many contracts over every device of a host (``local``) and over a cluster (Dask), behind one API.

``executor.py`` is the API (``hlx.executor``, ``hlx.run_many``, ``hlx.as_completed``), ``base.py`` what every
executor offers, ``local.py`` one worker thread per device, ``placement.py`` which device takes a contract,
``dask_executor.py`` and ``worker.py`` the two sides of a Dask cluster, ``objects.py`` the objects a
contract needs and their verified arrival, ``shared_store.py`` an fsspec store shared by the cluster.
docs/SCALE.md says how they fit.
"""
