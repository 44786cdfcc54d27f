"""Recording for the conversation coaches: consent, stereo files, pause, retention, audited listens."""
