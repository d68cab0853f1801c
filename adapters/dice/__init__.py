"""ct-plugin adapter for dice."""
