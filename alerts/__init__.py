"""govpulse alerts package."""
