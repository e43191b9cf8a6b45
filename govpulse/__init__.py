"""govpulse: public-opinion and government-message monitoring."""

__version__ = "0.1.0"
