"""devnode layer."""
