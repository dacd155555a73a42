"""Plugins that ship with dimsekit, each declared as an entry point."""
