"""govpulse classify package."""
