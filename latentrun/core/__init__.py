"""What every other package stands on and nothing here depends on: the component registries and
text helpers for messages."""
