"""The Dash dashboard: `create_app(store, settings)` in dashboard.app.

Nothing is imported here so that `govpulse --help` and worker start-up
stay cheap; import `dashboard.app` when you need the app.
"""
