"""Publishing domain events: CloudEvents on SNS, right after commit and by an outbox sweeper."""
