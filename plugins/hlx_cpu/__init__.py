"""hlx_cpu backend plugin."""
