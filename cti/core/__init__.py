"""What every part of cti shares: read-only views of calls, advisors and queues."""
