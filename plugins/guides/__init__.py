"""Topic guides: a short guide per topic and language beside the caller's card."""
