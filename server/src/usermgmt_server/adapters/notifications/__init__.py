"""Delivery of messages to users: SNS for production, the console in embedded mode."""
