"""hlx_wgpu backend plugin."""
