"""Memoized execution: a run whose result is already known is answered from the store.

``key`` derives the execution key of a run (the contract, the device class, the settings that can change
bytes, a salt), ``index`` maps keys to memo records under ``$HLX_HOME/memo/``, ``records`` writes records
and checks them before a hit is served, ``policy`` decides when ``hlx.run`` memoizes. docs/DETERMINISM.md
describes the whole.
"""
