"""The `siaga` command line."""
