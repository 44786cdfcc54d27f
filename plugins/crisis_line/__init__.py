"""The crisis line: a crisis switched on by a supervisor changes the IVR, the
routing and the overflow of the hotline until it is ended (docs/plugins.md)."""
