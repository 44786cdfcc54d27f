"""Outbound call lists: a supervisor's campaign of numbers, called progressively."""
