"""The plugins that ship with cti, one package each (see README.md here)."""
