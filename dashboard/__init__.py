"""govpulse dashboard package."""
