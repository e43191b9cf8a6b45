"""CLI commands of the core package."""
