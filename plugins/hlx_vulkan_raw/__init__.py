"""hlx_vulkan_raw backend plugin."""
