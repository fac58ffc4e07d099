"""hlx_wgpu: the wgpu-py backend plugin (``backend="wgpu"``)."""
