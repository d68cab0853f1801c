"""ct-plugin adapter for carla."""
