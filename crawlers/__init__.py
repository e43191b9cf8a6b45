"""govpulse crawlers package."""
