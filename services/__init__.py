"""Siaga's stages, clients and command line."""
